"""prodsafe.retry: retry hardening (docs/python.md).

The seed's RetryWindowTracker, RetryHistogram, RetryAnomalyDetector and
RetrySpikeDetector, and the retry executor with its policy and budget:

    policy = prodsafe.RetryPolicy(max_attempts=5, base_delay=0.05,
                                  budget=prodsafe.RetryBudget(ratio=0.2))
    fill = prodsafe.retry(lambda: exchange.place(order), policy)

retry() retries an exception whose ``retryable`` attribute is True (every
prodsafe.Error has one) and the types named in RetryPolicy(retry_on=...);
anything else, and the last failure when retries run out, is raised
unchanged. fn runs with the GIL held; the backoff sleeps release it.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

from prodsafe._prodsafe import (
    Anomaly,
    AnomalyType,
    FleetHistogram,
    Jitter,
    RetryAnomalyDetector,
    RetryBudget,
    RetryHistogram,
    RetryPolicy,
    RetrySpikeDetector,
    RetryWindow,
    RetryWindowTracker,
    SpikeAlert,
    retry,
)

__all__ = [
    "Anomaly",
    "AnomalyType",
    "FleetHistogram",
    "Jitter",
    "RetryAnomalyDetector",
    "RetryBudget",
    "RetryHistogram",
    "RetryPolicy",
    "RetrySpikeDetector",
    "RetryWindow",
    "RetryWindowTracker",
    "SpikeAlert",
    "retry",
    "retrying",
]

_F = TypeVar("_F", bound=Callable[..., Any])


def retrying(policy: RetryPolicy | None = None, *,
             retry_if_result: Callable[[Any], bool] | None = None) -> Callable[[_F], _F]:
    """Decorator: every call of the function goes through retry(..., policy).

        @prodsafe.retrying(prodsafe.RetryPolicy(max_attempts=5))
        def fetch_quote(symbol): ...
    """
    if policy is not None and not isinstance(policy, RetryPolicy):
        from prodsafe.errors import WrongType
        raise WrongType(f"policy must be a prodsafe.RetryPolicy or None, not {type(policy).__name__}")

    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return retry(lambda: fn(*args, **kwargs), policy, retry_if_result=retry_if_result)

        return wrapper  # type: ignore[return-value]

    return decorate
