"""validate_metric_labels against the same check written in pure Python
(issue 17: at least 10x faster). A quick check with timeit; the benchmark
proper lives in bench/."""

import re
import timeit

import prodsafe

# The seed's rules: exact names and the patterns *_id, *_uuid, *_guid, *timestamp*.
FORBIDDEN = {"job_id", "order_id", "trade_id", "user_id", "transaction_id", "request_id",
             "session_id", "correlation_id", "trace_id", "span_id", "client_order_id",
             "account_id", "email", "ip"}
SUFFIXES = ("_id", "_uuid", "_guid")
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
UNBOUNDED = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    r"|[0-9a-fA-F]{16}|[0-9]{10}|[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}")


class PurePythonGuard:
    """What validate_metric_labels checks, in plain (but not careless) Python:
    valid names, forbidden names and patterns, unbounded-looking values (a
    warning) and the per-metric label-set limit."""

    def __init__(self, max_label_sets=2000):
        self.max_label_sets = max_label_sets
        self.seen = {}

    def validate(self, metric_name, labels):
        valid = METRIC_NAME.fullmatch(metric_name) is not None
        for name, value in labels.items():
            if LABEL_NAME.fullmatch(name) is None or name.startswith("__"):
                valid = False
            elif name in FORBIDDEN or name.endswith(SUFFIXES) or "timestamp" in name:
                valid = False
            UNBOUNDED.search(value)  # a warning only
        sets = self.seen.setdefault(metric_name, set())
        key = tuple(sorted(labels.items()))
        if key not in sets:
            if len(sets) >= self.max_label_sets:
                return False
            sets.add(key)
        return valid


def names_only(metric_name, labels):
    """The seed's name rules alone, the fastest Python can do them."""
    for name in labels:
        if name in FORBIDDEN or name.endswith(SUFFIXES) or "timestamp" in name:
            return False
    return True


def per_call_ns(*fns, number=50_000, rounds=9):
    """The best time per call of each fn, measured in turns so that a busy
    moment of the machine (other builds run beside the tests) slows them all."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], timeit.timeit(fn, number=number) / number * 1e9)
    return best


def test_both_implementations_agree():
    python = PurePythonGuard()
    cases = [{"symbol": "BTCUSDT", "side": "buy"}, {"order_id": "1"}, {"fill_timestamp": "x"},
             {"venue": "binance", "device_uuid": "u"}, {"bad-name": "x"}, {}]
    for labels in cases:
        assert prodsafe.validate_metric_labels("speed_agree", labels) == \
            python.validate("speed_agree", labels), labels


def test_validate_metric_labels_is_at_least_10x_the_pure_python_check():
    labels = {"symbol": "BTCUSDT", "side": "buy", "status": "filled"}
    python = PurePythonGuard()
    native, pure, seed_names = per_call_ns(
        lambda: prodsafe.validate_metric_labels("order_latency", labels),
        lambda: python.validate("order_latency", labels),
        lambda: names_only("order_latency", labels))
    print(f"\nvalidate_metric_labels {native:.0f} ns/call; the same check in Python "
          f"{pure:.0f} ns ({pure / native:.1f}x); the name rules alone in Python "
          f"{seed_names:.0f} ns ({seed_names / native:.1f}x)")
    assert pure / native >= 10
    # Even the bare name rules, which skip most of the check, are slower.
    assert seed_names > native
