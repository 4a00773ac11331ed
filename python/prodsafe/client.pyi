from datetime import timedelta
from typing import Any, TypedDict

Seconds = float | timedelta

class TlsSettings(TypedDict, total=False):
    enabled: bool
    ca_file: str
    ca_dir: str
    cert_file: str
    key_file: str
    sni: str
    verify_peer: bool

class SentinelSettings(TypedDict, total=False):
    user: str | None
    password: str | None
    timeout: Seconds
    watch_switch: bool

class Redis:
    """A pooled, thread-safe connection to Redis, shared by everything in prodsafe."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: Seconds = ...,
        command_timeout: Seconds = ...,
        pool_size: int = ...,
        pool_checkout_timeout: Seconds = ...,
        reconnect_backoff_initial: Seconds = ...,
        reconnect_backoff_max: Seconds = ...,
        key_prefix: str = ...,
        user: str | None = ...,
        password: str | None = ...,
        tls: bool | TlsSettings = ...,
        sentinel: SentinelSettings = ...,
    ) -> None: ...
    def execute_command(self, *args: str | bytes | int | float) -> Any: ...
    def ping(self) -> bool: ...
    def get(self, key: str | bytes) -> bytes | None: ...
    def set(self, key: str | bytes, value: str | bytes | int | float,
            ex: Seconds | None = None) -> None: ...
    def delete(self, key: str | bytes) -> int: ...
    def key(self, name: str) -> str: ...
    @property
    def url(self) -> str: ...
    def pool_stats(self) -> dict[str, int]: ...
    def __enter__(self) -> Redis: ...
    def __exit__(self, *exc: object) -> bool: ...

def redis_for(client: Any) -> Redis:
    """The prodsafe.Redis for `client`: itself, or the one prodsafe keeps for a
    redis-py client (same host, port or unix path, db, credentials, TLS files,
    timeouts). Raises WrongType for anything else."""

__all__ = ["Redis", "redis_for"]
