"""prodsafe.metrics: metric label guards, the registry and its exporters
(docs/python.md).

    from prodsafe import MetricsCardinalityGuard, validate_metric_labels

    guard = MetricsCardinalityGuard(strict_mode=False)
    is_valid, violations = guard.validate_labels("order_latency", {"symbol": "BTCUSDT"})
    is_valid = validate_metric_labels("order_latency", {"symbol": "BTCUSDT"})

    registry = prodsafe.Registry()
    orders = registry.counter("orders_total", "Orders placed.", ["symbol", "side"])
    orders.labels("BTCUSDT", "buy").inc()
    with prodsafe.MetricsServer(registry, port=9464):
        ...  # Prometheus scrapes http://127.0.0.1:9464/metrics

validate_metric_labels runs in C++ on the dict as it is (no copy), for the
hot path of every metric emission.
"""

from prodsafe._prodsafe import (
    Counter,
    CounterFamily,
    Gauge,
    GaugeFamily,
    Histogram,
    HistogramFamily,
    MetricsCardinalityGuard,
    MetricsServer,
    Registry,
    StatsdClient,
    StatsdExporter,
    Violation,
    ViolationKind,
    default_registry,
    global_guard,
    looks_unbounded,
    validate_metric_labels,
)

__all__ = [
    "Counter",
    "CounterFamily",
    "Gauge",
    "GaugeFamily",
    "Histogram",
    "HistogramFamily",
    "MetricsCardinalityGuard",
    "MetricsServer",
    "Registry",
    "StatsdClient",
    "StatsdExporter",
    "Violation",
    "ViolationKind",
    "default_registry",
    "global_guard",
    "looks_unbounded",
    "validate_metric_labels",
]
