"""prodsafe's metric guards, Registry, MetricsServer and StatsD exporter: the
seed's Phase 5 example, forbidden labels and patterns, strict mode, the
exposition text checked by promtool, a server scraped over real HTTP and
StatsD datagrams received on a real UDP socket."""

import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request
import uuid

import pytest

import prodsafe
from prodsafe import MetricsCardinalityGuard, validate_metric_labels


def promtool_check(text):
    """promtool's verdict on an exposition page: (returncode, output)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed"
    done = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                          capture_output=True, timeout=30)
    return done.returncode, (done.stdout + done.stderr).decode()


def test_seed_phase5_example(capsys):
    # The seed's Phase 5 usage example, verbatim but for the import line.
    # Create guard
    guard = MetricsCardinalityGuard(strict_mode=False)

    # Validate labels
    metric_name = "order_latency"
    labels = {
        "symbol": "BTCUSDT",
        "side": "buy",
        "status": "filled"
    }

    is_valid, violations = guard.validate_labels(metric_name, labels)

    if not is_valid:
        print(f"Validation failed: {violations}")

    # Or use global guard
    is_valid = validate_metric_labels(metric_name, labels)

    assert is_valid is True
    assert violations == []
    assert capsys.readouterr().out == ""


def test_seed_phase5_example_with_a_forbidden_label(capsys):
    guard = MetricsCardinalityGuard(strict_mode=False)
    metric_name = "order_latency"
    labels = {"symbol": "BTCUSDT", "order_id": "ord-1"}
    is_valid, violations = guard.validate_labels(metric_name, labels)
    if not is_valid:
        print(f"Validation failed: {violations}")
    assert is_valid is False
    assert "Validation failed" in capsys.readouterr().out
    assert validate_metric_labels(metric_name, labels) is False


FORBIDDEN = ["job_id", "order_id", "trade_id", "user_id", "transaction_id", "request_id",
             "session_id", "correlation_id", "trace_id", "client_order_id", "account_id",
             # the patterns *_id, *_uuid, *_guid, *timestamp*
             "strategy_id", "device_uuid", "device_guid", "event_timestamp", "timestamp_ms",
             "last_timestamp_seen"]
ALLOWED = ["symbol", "side", "status", "exchange", "idle", "uuid_version", "guide",
           "times", "id_kind"]


@pytest.mark.parametrize("name", FORBIDDEN)
def test_forbidden_label_names_and_patterns(name):
    guard = MetricsCardinalityGuard()
    is_valid, violations = guard.validate_labels("order_latency", {name: "x"})
    assert is_valid is False
    assert [v.kind for v in violations] == [prodsafe.ViolationKind.FORBIDDEN_LABEL]
    assert violations[0].label == name and violations[0].error is True
    assert name in str(violations[0])
    assert guard.is_forbidden_label(name)
    assert validate_metric_labels("order_latency_forbidden", {"side": "buy", name: "x"}) is False


@pytest.mark.parametrize("name", ALLOWED)
def test_ordinary_label_names_pass(name):
    guard = MetricsCardinalityGuard()
    assert guard.validate_labels("order_latency", {name: "x"}) == (True, [])
    assert not guard.is_forbidden_label(name)
    assert validate_metric_labels("order_latency_allowed", {name: "x"}) is True


def test_allowed_and_extra_forbidden_labels():
    guard = MetricsCardinalityGuard(allowed_labels=["strategy_id"],
                                    extra_forbidden_labels={"customer"})
    assert guard.validate_labels("pnl", {"strategy_id": "s1"})[0] is True
    assert guard.validate_labels("pnl", {"customer": "acme"})[0] is False


def test_strict_mode_raises_cardinality_violation():
    guard = MetricsCardinalityGuard(strict_mode=True)
    with pytest.raises(prodsafe.CardinalityViolation) as caught:
        guard.validate_labels("order_latency", {"symbol": "BTCUSDT", "order_id": "o-1"})
    assert caught.value.metric == "order_latency"
    assert "order_id" in str(caught.value)
    assert isinstance(caught.value, prodsafe.Error) and caught.value.retryable is False
    assert guard.errors == 1
    # A fine label set passes in strict mode too.
    assert guard.validate_labels("order_latency", {"symbol": "BTCUSDT"}) == (True, [])


def test_unbounded_values_warn_but_stay_valid():
    guard = MetricsCardinalityGuard()
    for value in (str(uuid.uuid4()), "1732800000123", "2026-11-28T13:00:00Z", "deadbeefcafebabe00"):
        is_valid, violations = guard.validate_labels("fills", {"venue": value})
        assert is_valid is True, value
        assert [(v.kind, v.error) for v in violations] == \
            [(prodsafe.ViolationKind.UNBOUNDED_VALUE, False)], value
        assert prodsafe.looks_unbounded(value)
    assert not prodsafe.looks_unbounded("binance")


def test_the_label_set_limit_and_its_answers_again():
    guard = MetricsCardinalityGuard(max_label_sets=3)
    for side in ("a", "b", "c"):
        assert guard.validate_labels("orders", {"side": side}) == (True, [])
    is_valid, violations = guard.validate_labels("orders", {"side": "d"})
    assert is_valid is False
    assert violations[0].kind == prodsafe.ViolationKind.CARDINALITY_LIMIT
    # A set seen before keeps its answer; the order of a dict does not matter.
    assert guard.validate_labels("orders", {"side": "a"}) == (True, [])
    assert guard.label_sets("orders") == 3
    guard.validate_labels("pairs", {"x": "1", "y": "2"})
    guard.validate_labels("pairs", {"y": "2", "x": "1"})
    assert guard.label_sets("pairs") == 1


def test_validate_metric_labels_is_the_global_guard():
    metric = "global_guard_orders"
    assert validate_metric_labels(metric, {"a": "1", "b": "2"}) is True
    assert validate_metric_labels(metric, {"b": "2", "a": "1"}) is True  # same set
    assert validate_metric_labels(metric_name=metric, labels={"a": "1", "b": "3"}) is True
    assert prodsafe.global_guard().label_sets(metric) == 2
    errors = prodsafe.global_guard().errors
    assert validate_metric_labels(metric, {"order_id": "1"}) is False
    assert validate_metric_labels(metric, {"order_id": "1"}) is False  # asked again
    assert prodsafe.global_guard().errors == errors + 1  # counted once


def test_an_invalid_metric_or_label_name_is_invalid():
    guard = MetricsCardinalityGuard()
    is_valid, violations = guard.validate_labels("order latency", {"side": "buy"})
    assert is_valid is False
    assert violations[0].kind == prodsafe.ViolationKind.INVALID_NAME
    assert guard.validate_labels("ok_metric", {"bad-label": "x"})[0] is False
    assert guard.validate_labels("ok_metric", {"__reserved": "x"})[0] is False
    assert validate_metric_labels("9starts_with_digit", {}) is False


class StrSubclass(str):
    pass


@pytest.mark.parametrize("labels, error", [
    (["side", "buy"], prodsafe.WrongType),
    ("side=buy", prodsafe.WrongType),
    (None, prodsafe.WrongType),
    ({"side": 1}, prodsafe.WrongType),
    ({"side": None}, prodsafe.WrongType),
    ({"side": b"buy"}, prodsafe.WrongType),
    ({1: "buy"}, prodsafe.WrongType),
    ({"side": "\ud800"}, prodsafe.InvalidArgument),
])
def test_bad_labels_are_refused_by_both_guards(labels, error):
    with pytest.raises(error):
        validate_metric_labels("orders", labels)
    with pytest.raises(error):
        MetricsCardinalityGuard().validate_labels("orders", labels)


def test_bad_metric_names_and_calls_are_refused():
    with pytest.raises(prodsafe.WrongType):
        validate_metric_labels(42, {"side": "buy"})
    with pytest.raises(prodsafe.WrongType):
        MetricsCardinalityGuard().validate_labels(None, {"side": "buy"})
    with pytest.raises(prodsafe.InvalidArgument):
        validate_metric_labels("orders")
    with pytest.raises(prodsafe.InvalidArgument):
        validate_metric_labels("orders", {}, {})
    with pytest.raises(prodsafe.InvalidArgument):
        validate_metric_labels("orders", labels={}, metric_name="x")
    # str subclasses are str.
    assert validate_metric_labels(StrSubclass("orders_sub"), {StrSubclass("side"): StrSubclass("buy")})


@pytest.mark.parametrize("options", [
    {"strict_mode": "yes"}, {"max_label_sets": 0}, {"max_label_sets": "10"},
    {"allowed_labels": "strategy_id"}, {"allowed_labels": [1]}, {"log_interval": -1},
])
def test_bad_guard_options_are_refused(options):
    with pytest.raises(prodsafe.InvalidArgument):  # WrongType is one too
        MetricsCardinalityGuard(**options)


def make_registry():
    registry = prodsafe.Registry(MetricsCardinalityGuard(max_label_sets=2))
    orders = registry.counter("orders_total", "Orders placed.", ["symbol", "side"])
    orders.labels("BTCUSDT", "buy").inc()
    orders.labels(symbol="ETHUSDT", side="sell").inc(2.5)
    orders.labels("SOLUSDT", "buy").inc()  # past the limit: the overflow series
    inflight = registry.gauge("orders_in_flight", "Orders awaiting a fill.")
    inflight.set(3)
    latency = registry.histogram("order_latency_seconds", "Order round trip.", ["venue"],
                                 bounds=[0.01, 0.1, 1])
    for value in (0.005, 0.05, 0.5, 5):
        latency.labels("binance").observe(value)
    quoted = registry.counter("quotes_total", 'Quotes with "quotes" and \\ and\nnewlines.', ["note"])
    quoted.labels('say "hi"\\\n').inc()
    return registry, orders, inflight, latency


def test_registry_exposition_passes_promtool():
    registry, orders, inflight, latency = make_registry()
    text = registry.serialize()
    code, output = promtool_check(text)
    assert code == 0, output + text
    assert 'orders_total{side="buy",symbol="BTCUSDT"} 1' in text or \
        'orders_total{symbol="BTCUSDT",side="buy"} 1' in text
    assert 'orders_total{symbol="ETHUSDT",side="sell"} 2.5' in text
    assert 'orders_total{symbol="__overflow__",side="__overflow__"} 1' in text
    assert "orders_in_flight 3" in text
    assert 'order_latency_seconds_bucket{venue="binance",le="0.1"} 2' in text
    assert 'order_latency_seconds_bucket{venue="binance",le="+Inf"} 4' in text
    assert 'order_latency_seconds_count{venue="binance"} 4' in text
    assert orders.overflowed == 1 and len(orders) == 3
    assert latency.labels(venue="binance").counts == [1, 1, 1, 1]
    assert inflight.labels().value == 3
    names = [family["name"] for family in registry.collect()]
    assert names == sorted(names) and "orders_total" in names


def test_promtool_refuses_a_broken_page():
    # The promtool check can fail: a page with a sample of no declared type twice.
    code, _ = promtool_check("# TYPE x counter\nx 1\nx 2\n")
    assert code != 0


def test_registry_refuses_what_would_break_the_page():
    registry = prodsafe.Registry()
    registry.counter("jobs_total", "Jobs.", ["queue"])
    with pytest.raises(prodsafe.InvalidArgument):
        registry.gauge("jobs_total", "Jobs.", ["queue"])  # another type
    with pytest.raises(prodsafe.InvalidArgument):
        registry.counter("bad name", "x")
    with pytest.raises(prodsafe.InvalidArgument):
        registry.histogram("h", "x", ["le"])
    with pytest.raises(prodsafe.InvalidArgument):
        registry.histogram("h2", "x", bounds=[1, 0.5])
    family = registry.counter("jobs_total", "Jobs.", ["queue"])  # the same one again
    with pytest.raises(prodsafe.InvalidArgument):
        family.labels("a", "b")
    with pytest.raises(prodsafe.InvalidArgument):
        family.labels(queue="a", other="b")
    with pytest.raises(prodsafe.WrongType):
        family.labels(7)
    with pytest.raises(prodsafe.InvalidArgument):
        family.labels("q").inc(-1)
    with pytest.raises(prodsafe.InvalidArgument):
        family.labels("q").inc(float("nan"))
    with pytest.raises(prodsafe.WrongType):
        registry.counter("c", "x", "queue")  # a str, not a list of names
    with pytest.raises(prodsafe.WrongType):
        prodsafe.Registry(guard="strict")


def test_registry_strict_guard_refuses_forbidden_label_names():
    registry = prodsafe.Registry(MetricsCardinalityGuard(strict_mode=True))
    with pytest.raises(prodsafe.CardinalityViolation):
        registry.counter("fills_total", "Fills.", ["order_id"])


def http_get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("Content-Type"), response.read().decode()


def test_metrics_server_is_scraped_over_http():
    registry, orders, _, _ = make_registry()
    server = prodsafe.MetricsServer(registry)
    assert server.port is None and not server.running
    server.start()
    try:
        assert server.running and server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        status, content_type, body = http_get(server.url)
        assert status == 200 and content_type.startswith("text/plain")
        assert 'orders_total{symbol="ETHUSDT",side="sell"} 2.5' in body
        assert "prodsafe_build_info" in body
        code, output = promtool_check(body)
        assert code == 0, output
        orders.labels("BTCUSDT", "buy").inc()
        assert 'orders_total{symbol="BTCUSDT",side="buy"} 2' in http_get(server.url)[2]
        assert http_get(f"http://127.0.0.1:{server.port}/healthz")[0] == 200
        port = server.port
        with pytest.raises(prodsafe.IoError):  # the port is taken
            prodsafe.MetricsServer(registry, port=port).start()
    finally:
        server.stop()
    assert server.port is None
    with pytest.raises(urllib.error.URLError):
        http_get(f"http://127.0.0.1:{port}/metrics")


def test_metrics_server_with_block_and_default_registry():
    with prodsafe.MetricsServer() as server:
        body = http_get(server.url)[2]
    assert "prodsafe_build_info" in body
    assert not server.running


def test_scrapes_from_threads_while_python_records():
    registry = prodsafe.Registry()
    counter = registry.counter("ticks_total", "Ticks.")
    with prodsafe.MetricsServer(registry) as server:
        stop = threading.Event()

        def tick():
            while not stop.is_set():
                counter.inc()

        ticker = threading.Thread(target=tick)
        ticker.start()
        try:
            bodies = [http_get(server.url)[2] for _ in range(5)]
        finally:
            stop.set()
            ticker.join()
    assert all("ticks_total " in body for body in bodies)


@pytest.mark.parametrize("kwargs, error", [
    ({"port": 70000}, prodsafe.InvalidArgument),
    ({"port": "80"}, prodsafe.WrongType),
    ({"max_connections": 0}, prodsafe.InvalidArgument),
    ({"request_timeout": -1}, prodsafe.InvalidArgument),
    ({"registry": "default"}, prodsafe.WrongType),
    ({"host": "no-such-host.invalid"}, prodsafe.ConfigError),
])
def test_bad_server_options(kwargs, error):
    with pytest.raises(error):
        prodsafe.MetricsServer(**kwargs).start()


@pytest.fixture
def udp_listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


def test_statsd_client_sends_datagrams(udp_listener):
    port = udp_listener.getsockname()[1]
    with prodsafe.StatsdClient(port=port, prefix="app", flush_interval=0,
                               constant_tags={"env": "test"}) as statsd:
        statsd.counter("orders", 1, {"side": "buy"})
        assert udp_listener.recv(65535).decode() == "app.orders:1|c|#side:buy,env:test"
        statsd.timing("claim", 0.0025)
        assert udp_listener.recv(65535).decode() == "app.claim:2.5|ms|#env:test"
        statsd.counter("fills", 1, {"order_id": "o-1"})  # a forbidden tag: overflow series
        assert udp_listener.recv(65535).decode() == "app.fills:1|c|#order_id:__overflow__,env:test"
        assert statsd.overflowed == 1 and statsd.sent_metrics == 3
    with pytest.raises(prodsafe.InvalidArgument):
        statsd.flush()  # closed


def test_statsd_exporter_pushes_a_registry(udp_listener):
    port = udp_listener.getsockname()[1]
    registry = prodsafe.Registry()
    registry.counter("jobs_total", "Jobs.", ["queue"]).labels("fast").inc(3)
    statsd = prodsafe.StatsdClient(port=port, flush_interval=0)
    exporter = prodsafe.StatsdExporter(registry, statsd, interval=0)
    with pytest.raises(prodsafe.InvalidArgument):
        statsd.close()  # the exporter still pushes through it
    exporter.export_now()
    lines = set()
    while "jobs_total:3|c|#queue:fast" not in lines:
        lines.update(udp_listener.recv(65535).decode().split("\n"))
    exporter.close()
    statsd.close()


@pytest.mark.parametrize("kwargs, error", [
    ({"flavour": "graphite"}, prodsafe.InvalidArgument),
    ({"port": 0}, prodsafe.InvalidArgument),
    ({"constant_tags": ["env"]}, prodsafe.WrongType),
    ({"prefix": "a|b"}, prodsafe.InvalidArgument),
])
def test_bad_statsd_options(kwargs, error):
    with pytest.raises(error):
        prodsafe.StatsdClient(**kwargs)


def test_bad_statsd_calls(udp_listener):
    with prodsafe.StatsdClient(port=udp_listener.getsockname()[1], flush_interval=0) as statsd:
        with pytest.raises(prodsafe.WrongType):
            statsd.counter("x", "1")
        with pytest.raises(prodsafe.WrongType):
            statsd.counter("x", 1, {"side": 1})
        with pytest.raises(prodsafe.InvalidArgument):
            statsd.counter("x", 1, sample_rate=2)
        with pytest.raises(prodsafe.InvalidArgument):
            statsd.counter("", 1)


def test_a_str_that_is_not_utf8_encodable_is_invalid_argument():
    # A lone surrogate cannot be encoded: a clear error, not pybind11's cast error.
    registry = prodsafe.Registry()
    with pytest.raises(prodsafe.InvalidArgument):
        registry.counter("\ud800", "help")
    with pytest.raises(prodsafe.InvalidArgument):
        registry.counter("c_help", "\ud800")
    with pytest.raises(prodsafe.InvalidArgument):
        prodsafe.looks_unbounded("\udfff")
    with pytest.raises(prodsafe.InvalidArgument):
        prodsafe.StatsdClient(prefix="\ud800")


def test_start_stop_flush_and_close_from_threads(udp_listener):
    server = prodsafe.MetricsServer(prodsafe.Registry())
    statsd = prodsafe.StatsdClient(port=udp_listener.getsockname()[1], flush_interval=0)
    failures = []

    def churn():
        try:
            for _ in range(20):
                server.start()
                port = server.port
                assert port is None or port > 0
                server.stop()
                try:
                    statsd.counter("ticks")
                    statsd.flush()
                except prodsafe.InvalidArgument:  # closed by another thread
                    pass
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for thread in threads:
        thread.start()
    statsd.close()
    for thread in threads:
        thread.join()
    assert failures == []
    assert not server.running


def test_the_default_registry_with_prodsafe_instruments_passes_promtool(redis_server):
    # prodsafe's own instruments land in the default registry: the retry
    # loop's, the detectors' and the runtime checks'.
    prodsafe.retry(lambda: "ok", prodsafe.RetryPolicy(job_type="promtool_check"))
    prodsafe.RetrySpikeDetector(job_type="promtool_check").record_retry()
    prodsafe.RedisRuntimeValidator(prodsafe.Redis(redis_server.url),
                                   latency_samples=1).validate_on_startup()
    validate_metric_labels("promtool_check_total", {"order_id": "x"})
    text = prodsafe.default_registry().serialize()
    assert 'prodsafe_retry_attempts_total{job_type="promtool_check"}' in text
    assert "prodsafe_runtime_checks{" in text
    code, output = promtool_check(text)
    assert code == 0, output
