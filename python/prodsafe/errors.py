"""prodsafe's exceptions: one hierarchy rooted at prodsafe.Error.

Each class is the C++ class of the same name (include/prodsafe/core/error.hpp)
and carries the same fields as attributes. Every error has:

- ``code``: what went wrong, the C++ ErrorCode's name ("StoreUnavailable",
  "Timeout", ...);
- ``retryable``: True when repeating the same call later may succeed;
- ``message``: the text, as in C++ (passwords in URLs redacted).

Catch the most specific class whose handling differs (docs/python.md lists
what each one means). Errors pickle with their attributes, so they cross
multiprocessing boundaries intact.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Error",
    "StoreUnavailable",
    "Timeout",
    "ReplicationShortfall",
    "ReplyError",
    "IoError",
    "ConfigError",
    "ProtocolError",
    "DecodeError",
    "EncodeError",
    "InvalidArgument",
    "WrongType",
    "Conflict",
    "AlreadyInProgress",
    "LeaseLost",
    "CardinalityViolation",
    "EffectFailed",
    "ResultUnavailable",
]


class Error(Exception):
    """Base of every exception prodsafe raises."""

    code: str = "Error"
    retryable: bool = False

    def __init__(self, message: str = "", *, code: str | None = None,
                 retryable: bool | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else type(self).code
        self.retryable = retryable if retryable is not None else type(self).retryable
        for name, value in fields.items():
            setattr(self, name, value)

    def __reduce__(self):
        return (_rebuild, (type(self), self.message), dict(self.__dict__))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type, message: str) -> Error:
    return cls.__new__(cls, message)


class StoreUnavailable(Error):
    """Redis could not be reached, or the connection broke mid-call. Retryable."""

    code = "StoreUnavailable"
    retryable = True


class Timeout(StoreUnavailable):
    """A deadline passed (connect, command, pool checkout). The command may or
    may not have taken effect on the server."""

    code = "Timeout"


class ReplicationShortfall(Error):
    """A write reached the primary, but fewer replicas than asked for
    acknowledged it (WAIT). Attributes: ``acknowledged``, ``requested``."""

    code = "ReplicationShortfall"
    retryable = True
    acknowledged: int = 0
    requested: int = 0


class ReplyError(Error):
    """The server answered with an error. ``server_message`` is its text,
    ``prefix`` its first word (WRONGTYPE, NOSCRIPT, ...); ``retryable`` is
    True for LOADING, BUSY, TRYAGAIN, MASTERDOWN, CLUSTERDOWN, READONLY, OOM
    and NOREPLICAS."""

    code = "ReplyError"
    server_message: str = ""
    prefix: str = ""


class IoError(Error):
    """A local resource failed (a file, a directory, a socket, a fork)."""

    code = "IoError"


class ConfigError(Error):
    """The configuration names something that does not exist or cannot be used."""

    code = "ConfigError"


class ProtocolError(Error):
    """The server's answer was not what the protocol promises."""

    code = "ProtocolError"


class DecodeError(Error):
    """A stored value could not be decoded (garbage under a key, wrong type)."""

    code = "DecodeError"


class EncodeError(Error):
    """A value cannot be encoded for storage (not JSON-serialisable, NaN, ...)."""

    code = "EncodeError"


class InvalidArgument(Error, ValueError):
    """The caller passed something invalid. Fix the call; retrying cannot help."""

    code = "InvalidArgument"


class WrongType(InvalidArgument, TypeError):
    """An argument has the wrong type (also a TypeError)."""


class Conflict(Error):
    """The same idempotency key was used for a different request. ``key``."""

    code = "Conflict"
    key: str = ""


class AlreadyInProgress(Error):
    """Another worker holds a live lease on the effect. ``key``, and
    ``retry_after`` (seconds left on that lease)."""

    code = "AlreadyInProgress"
    retryable = True
    key: str = ""
    retry_after: float = 0.0


class LeaseLost(Error):
    """The effect ran, but its lease was taken over before it committed.
    ``key``, ``token`` (the superseded fencing token) and ``result`` (what
    this caller's effect returned, so it is not lost)."""

    code = "LeaseLost"
    key: str = ""
    token: int = 0
    result: Any = None


class CardinalityViolation(Error):
    """A metric's labels would explode its series count (strict mode). ``metric``."""

    code = "CardinalityViolation"
    metric: str = ""


class EffectFailed(Error):
    """An earlier run of the effect failed and its failure was recorded
    (record_failures). ``key``, ``recorded_error``."""

    code = "EffectFailed"
    key: str = ""
    recorded_error: str = ""


class ResultUnavailable(Error):
    """The effect ran before, but its result could not be stored; it is not
    run again. ``key``, ``reason``."""

    code = "ResultUnavailable"
    key: str = ""
    reason: str = ""
