"""The fleet-wide circuit breaker (the seed's CircuitBreaker; docs/python.md).

    from prodsafe import CircuitBreaker, AlertHooks
    breaker = CircuitBreaker(redis_client, job_type="trading",
                             failure_threshold=10, time_window_minutes=5,
                             alert_hooks=alert_hooks)
    if not breaker.can_retry()[0]:
        return
    try:
        result = perform_operation()
        breaker.record_success()
    except Exception:
        breaker.record_failure()
        raise

State lives in Redis, so failures recorded by one process open the breaker
for every process on that Redis. can_retry() in CLOSED is answered from this
process's view without a round trip (other processes' transitions arrive by
pub/sub, and the view is re-read when older than `staleness`).
InMemoryBreakerStore keeps the state in this process only, for unit tests.
"""

from __future__ import annotations

import enum

from prodsafe._prodsafe import CircuitBreaker, InMemoryBreakerStore, Permission

__all__ = ["CircuitBreaker", "CircuitState", "InMemoryBreakerStore", "Permission"]


class CircuitState(str, enum.Enum):
    """A breaker's state; a str, so ``state == "OPEN"`` works too."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"
    FORCED_OPEN = "FORCED_OPEN"
    DISABLED = "DISABLED"

    def __str__(self) -> str:
        return self.value
