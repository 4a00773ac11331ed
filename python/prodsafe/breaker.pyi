"""The fleet-wide circuit breaker (the seed's CircuitBreaker)."""

import datetime
import enum
from typing import Any

from prodsafe.alerts import AlertHooks

Seconds = int | float | datetime.timedelta

class CircuitState(str, enum.Enum):
    """A breaker's state; a str, so ``state == "OPEN"`` works too."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"
    FORCED_OPEN = "FORCED_OPEN"
    DISABLED = "DISABLED"

class InMemoryBreakerStore:
    """Breaker state in this process only (per process: nothing is shared with
    other processes), for unit tests without Redis. Pass it to CircuitBreaker
    in place of the Redis connection; breakers sharing one store and job_type
    share their state."""

    def __init__(self) -> None: ...

class Permission:
    """What CircuitBreaker.check() answers. Truthy when allowed."""

    @property
    def allowed(self) -> bool: ...
    @property
    def reason(self) -> str | None:
        """Why not; None when allowed."""
    @property
    def state(self) -> CircuitState: ...
    @property
    def retry_after(self) -> float:
        """Seconds of break left (OPEN)."""
    @property
    def permit(self) -> int:
        """The HALF_OPEN probe permit this call holds; 0: none."""
    def __bool__(self) -> bool: ...

class CircuitBreaker:
    """A circuit breaker the whole fleet shares.

    redis: a prodsafe.Redis, a redis-py client, or an InMemoryBreakerStore.
    State lives in Redis: failures recorded by one process open the breaker
    for every process; the alert hooks fire once per fleet-wide transition,
    in the process that made it. can_retry(), record_success() and
    record_failure() never raise (with Redis unreachable the breaker decides
    on this process's view). Durations in seconds or datetime.timedelta."""

    def __init__(
        self,
        redis: Any,
        job_type: str,
        failure_threshold: int = 10,
        time_window_minutes: float | datetime.timedelta | None = None,
        alert_hooks: AlertHooks | None = None,
        *,
        time_window: Seconds = ...,
        window_buckets: int = 10,
        failure_ratio: float = 0.0,
        minimum_throughput: int = 20,
        break_duration: Seconds = 30,
        break_multiplier: float = 2.0,
        max_break_duration: Seconds = 300,
        half_open_max_probes: int = 1,
        max_half_open_wait: Seconds = 30,
        staleness: Seconds = 1,
        subscribe: bool = True,
    ) -> None:
        """time_window_minutes defaults to 5 (or give time_window in seconds)."""
    def can_retry(self) -> tuple[bool, str | None]:
        """(allowed, reason): whether a call may be made now; reason None when
        allowed. In CLOSED, answered without a round trip."""
    def check(self) -> Permission:
        """can_retry() as a Permission (state, retry_after, probe permit)."""
    def record_success(self, permission: Permission | None = None) -> None:
        """Records a success (with this thread's probe permit, or `permission`'s)."""
    def record_failure(self, permission: Permission | None = None) -> None:
        """Records a failure; opens the breaker at the threshold and fires the hooks."""
    @property
    def state(self) -> CircuitState:
        """The store's state (a round trip), or this process's view when the
        store is unreachable."""
    def force_open(self, actor: str | None = None) -> None:
        """FORCED_OPEN fleet-wide. Raises StoreUnavailable when unreachable.
        actor: who is recorded as forcing it (default: this process's
        host:pid), up to 256 bytes."""
    def force_close(self, actor: str | None = None) -> None:
        """CLOSED fleet-wide, the window emptied; actor as force_open."""
    def disable(self, actor: str | None = None) -> None:
        """DISABLED fleet-wide: every call allowed; actor as force_open."""
    def reset(self) -> None:
        """CLOSED fleet-wide with no history."""
    def snapshot(self) -> dict[str, Any]:
        """The store's view (a round trip): state, failures, successes, trips,
        retry_after (seconds), forced_by and forced_at (who forced the state
        and when, a Unix time; None when nothing forced holds). Raises
        StoreUnavailable when unreachable."""
    @property
    def job_type(self) -> str: ...
    @property
    def failure_threshold(self) -> int: ...
    @property
    def time_window(self) -> float:
        """The window in seconds."""
    @property
    def store_operations(self) -> int:
        """Store operations made (can_retry()'s local answers make none)."""
    @property
    def store_unavailable(self) -> bool:
        """True while the store is unreachable and this process decides alone."""

__all__ = ["CircuitBreaker", "CircuitState", "InMemoryBreakerStore", "Permission"]
