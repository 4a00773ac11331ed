"""prodsafe: exactly-once side effects, a fleet-wide circuit breaker, retry
hardening, runtime checks and metric guards for workers on Redis, built on
prodsafe's C++ core. See docs/python.md.

    import prodsafe
    redis = prodsafe.Redis("redis://127.0.0.1:6379/0")
    wrapper = prodsafe.SideEffectWrapper(redis)
    executed, fill = wrapper.execute_once(prodsafe.EffectType.ORDER_PLACEMENT,
                                          "order-42", place_order)

Wherever a Redis connection is asked for, a prodsafe.Redis or a redis-py
client (redis.from_url(...)) may be passed.
"""

from prodsafe._prodsafe import __version__
from prodsafe.errors import *  # noqa: F401,F403
from prodsafe.errors import __all__ as _errors_all
from prodsafe.client import *  # noqa: F401,F403
from prodsafe.client import __all__ as _client_all
from prodsafe.idempotency import *  # noqa: F401,F403
from prodsafe.idempotency import __all__ as _idempotency_all
from prodsafe.alerts import *  # noqa: F401,F403
from prodsafe.alerts import __all__ as _alerts_all
from prodsafe.breaker import *  # noqa: F401,F403
from prodsafe.breaker import __all__ as _breaker_all
from prodsafe.retry import *  # noqa: F401,F403
from prodsafe.retry import __all__ as _retry_all
from prodsafe.metrics import *  # noqa: F401,F403
from prodsafe.metrics import __all__ as _metrics_all
from prodsafe.runtime_checks import *  # noqa: F401,F403
from prodsafe.runtime_checks import __all__ as _runtime_checks_all

__all__ = ["__version__", *_errors_all, *_client_all, *_idempotency_all, *_alerts_all,
           *_breaker_all, *_retry_all, *_metrics_all, *_runtime_checks_all]
