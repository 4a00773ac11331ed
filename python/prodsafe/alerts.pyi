"""Alert hooks (the seed's AlertHooks) and the Slack, PagerDuty and JSON webhooks."""

import datetime
from typing import Any, Callable, TypedDict

Seconds = int | float | datetime.timedelta

class AlertContext(TypedDict, total=False):
    """The context a hook gets (and AlertHooks.fire() takes): JSON-friendly."""

    job_type: str
    state: str
    previous_state: str
    failure_count: int
    threshold: int
    window: float  # seconds
    timestamp: float | None  # Unix seconds
    instance: str  # "host:pid"
    extra: dict[str, str]

Hook = Callable[[str, str, AlertContext], object]

CIRCUIT_OPENED: str
CIRCUIT_HALF_OPEN: str
CIRCUIT_CLOSED: str
CIRCUIT_DISABLED: str
CIRCUIT_STORE_UNAVAILABLE: str
CIRCUIT_STORE_AVAILABLE: str
PAGERDUTY_EVENTS_URL: str

class WebhookDispatcher:
    """Delivers webhook POSTs off the caller's thread (a bounded queue, one
    thread); share one among sinks. Waits up to drain_timeout when it goes."""

    def __init__(
        self,
        *,
        queue_capacity: int = 1000,
        timeout: Seconds = 5,
        max_attempts: int = 3,
        retry_delay: Seconds = 0.2,
        max_retry_after: Seconds = 60,
        drain_timeout: Seconds = 2,
        ca_cert_path: str = "",
    ) -> None: ...
    def flush(self, timeout: Seconds = 5.0) -> bool:
        """Waits until nothing is queued or in flight; True when so."""
    @property
    def delivered(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def retried(self) -> int: ...
    @property
    def pending(self) -> int: ...

class WebhookSink:
    """A webhook: formats an alert as an HTTP POST and enqueues it."""

    def format(self, event_type: str, message: str,
               context: AlertContext | None = None) -> dict[str, str] | None:
        """The POST (url, body, content_type, sink), or None if the event is ignored."""
    def send(self, event_type: str, message: str, context: AlertContext | None = None) -> bool:
        """Formats and enqueues; never blocks."""
    @property
    def url(self) -> str:
        """Redacted: path and query replaced by /***."""
    @property
    def dispatcher(self) -> WebhookDispatcher: ...

class SlackWebhook(WebhookSink):
    """A Slack incoming webhook ({"text": ...})."""

    def __init__(self, url: str, dispatcher: WebhookDispatcher | None = None) -> None: ...

class PagerDutyEvents(WebhookSink):
    """PagerDuty Events API v2: circuit_opened triggers, circuit_closed resolves."""

    def __init__(self, routing_key: str, url: str = ...,
                 dispatcher: WebhookDispatcher | None = None) -> None: ...

class JsonWebhook(WebhookSink):
    """Any endpoint taking JSON: {"event_type", "message", "context"}."""

    def __init__(self, url: str, dispatcher: WebhookDispatcher | None = None) -> None: ...

class AlertHooks:
    """Hooks called as hook(event_type, message, context) with the GIL, on the
    thread that fires; a hook that raises is reported through
    sys.unraisablehook and counted in hook_errors, never passed on. From
    interpreter exit (atexit) on, Python hooks are no longer called."""

    def __init__(self) -> None: ...
    def add_log_hook(self, hook: Hook) -> None: ...
    def add_metric_hook(self, hook: Hook) -> None: ...
    def add_event_hook(self, hook: Hook) -> None: ...
    def add_webhook_hook(self, hook: Hook | WebhookSink) -> None:
        """A callable (called like the others) or a WebhookSink (delivered off thread)."""
    def add_slack_webhook(self, url: str,
                          dispatcher: WebhookDispatcher | None = None) -> SlackWebhook: ...
    def add_pagerduty_events(self, routing_key: str, url: str = ...,
                             dispatcher: WebhookDispatcher | None = None) -> PagerDutyEvents: ...
    def add_json_webhook(self, url: str,
                         dispatcher: WebhookDispatcher | None = None) -> JsonWebhook: ...
    def add_redis_stream(self, redis: Any, max_entries: int = 1000) -> RedisAlertStream:
        """Also appends every alert, off the caller's thread, to the fleet's
        capped Redis stream alerts:recent (`prodsafe dashboard` shows it)."""
    def fire(self, event_type: str, message: str, context: AlertContext | None = None) -> None:
        """Calls every hook, as the breaker does; never raises what a hook raises."""
    @property
    def fired(self) -> int: ...
    @property
    def hook_errors(self) -> int: ...
    def __len__(self) -> int: ...

class RedisAlertStream:
    """The fleet's alert history writer: queued in memory, appended by its own
    thread to alerts:recent; what cannot be written is dropped and counted."""

    def flush(self, timeout: float | datetime.timedelta = 1.0) -> bool:
        """Waits until what was queued is written (True) or timeout (False)."""
    def stats(self) -> dict[str, int]:
        """written, dropped_queue_full, dropped_redis_error, dropped_shutdown,
        dropped_forked_child."""
    @property
    def key(self) -> str: ...

def read_recent_alerts(redis: Any, count: int = 50) -> list[dict[str, Any]]:
    """The fleet's newest alerts first: id, event_type, message, context; a
    damaged entry has id and damage instead."""

RETRY_SPIKE: str
RETRY_ANOMALY: str

__all__ = [
    "AlertHooks", "RedisAlertStream", "read_recent_alerts", "RETRY_SPIKE", "RETRY_ANOMALY", "WebhookSink", "SlackWebhook", "PagerDutyEvents", "JsonWebhook",
    "WebhookDispatcher", "CIRCUIT_OPENED", "CIRCUIT_HALF_OPEN", "CIRCUIT_CLOSED",
    "CIRCUIT_DISABLED", "CIRCUIT_STORE_UNAVAILABLE", "CIRCUIT_STORE_AVAILABLE",
    "PAGERDUTY_EVENTS_URL",
]
