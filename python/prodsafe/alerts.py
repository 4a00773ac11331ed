"""Alert hooks (the seed's AlertHooks) and the Slack, PagerDuty and JSON
webhooks (docs/python.md).

    from prodsafe import AlertHooks
    hooks = AlertHooks()
    hooks.add_log_hook(lambda event_type, message, context: print(message))
    hooks.add_slack_webhook("https://hooks.slack.com/services/...")

A hook is called as hook(event_type, message, context) with the GIL held,
on the thread that fires the alert; one that raises is reported through
sys.unraisablehook and counted in AlertHooks.hook_errors, never passed on.
Webhook sinks only enqueue; their WebhookDispatcher's thread delivers.
"""

from prodsafe._prodsafe import (
    CIRCUIT_CLOSED,
    CIRCUIT_DISABLED,
    CIRCUIT_HALF_OPEN,
    CIRCUIT_OPENED,
    CIRCUIT_STORE_AVAILABLE,
    CIRCUIT_STORE_UNAVAILABLE,
    PAGERDUTY_EVENTS_URL,
    RETRY_ANOMALY,
    RETRY_SPIKE,
    AlertHooks,
    JsonWebhook,
    PagerDutyEvents,
    RedisAlertStream,
    SlackWebhook,
    WebhookDispatcher,
    WebhookSink,
    read_recent_alerts,
)

__all__ = [
    "AlertHooks",
    "RedisAlertStream",
    "read_recent_alerts",
    "RETRY_SPIKE",
    "RETRY_ANOMALY",
    "WebhookSink",
    "SlackWebhook",
    "PagerDutyEvents",
    "JsonWebhook",
    "WebhookDispatcher",
    "CIRCUIT_OPENED",
    "CIRCUIT_HALF_OPEN",
    "CIRCUIT_CLOSED",
    "CIRCUIT_DISABLED",
    "CIRCUIT_STORE_UNAVAILABLE",
    "CIRCUIT_STORE_AVAILABLE",
    "PAGERDUTY_EVENTS_URL",
]
