"""prodsafe from Python, measured against the same work done in Python.

Every figure is a ratio against a baseline taken in the same run, on the same
private redis-server (started here, on a free loopback port), never an
absolute target asserted anywhere:

- execute_once, first execution and duplicate: prodsafe's SideEffectWrapper
  against the seed's own design written with redis-py (SETNX the key, EXPIRE
  it, run the effect, SET the JSON result; a duplicate's SETNX fails and GET
  returns the result), as the seed describes it ("Redis SETNX + GET").
  prodsafe's duplicate is measured twice: from Redis (the default) and from
  its in-process result cache (result_cache_size).
- validate_metric_labels: prodsafe's against the same checks written in pure
  Python (the seed's forbidden names and patterns, Prometheus name rules,
  unbounded-looking values, a label-set limit per metric), run on every call
  as the seed's guard does; and against that Python also answering a label
  set it has seen before from a dict, as prodsafe's guard does.
- CircuitBreaker.can_retry() in CLOSED: nanoseconds per call from Python,
  next to an empty Python method call as the floor.

Run it with `make bench`, or after a build:
    PYTHONPATH=build/python /usr/bin/python3 bench/python_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time

import redis as redis_py

import prodsafe
from prodsafe.testing import RedisServer


def best_per_call(fn, calls: int, rounds: int) -> float:
    """Median over `rounds` of the mean seconds per call of `calls` calls."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


# --- the seed's design in redis-py -------------------------------------------

class SeedSideEffectWrapper:
    """The seed's SideEffectWrapper as its summary describes it: SETNX on
    effect:{type}:{entity_id}, a 72 h TTL, the JSON result cached under the
    key, GET for a duplicate."""

    def __init__(self, client, ttl_seconds: int = 72 * 3600):
        self.redis = client
        self.ttl = ttl_seconds

    def execute_once(self, effect_type: str, entity_id: str, fn):
        key = f"effect:{effect_type}:{entity_id}"
        if self.redis.setnx(key, "pending"):
            self.redis.expire(key, self.ttl)
            result = fn()
            self.redis.set(key, json.dumps(result), ex=self.ttl)
            return True, result
        cached = self.redis.get(key)
        return False, json.loads(cached)


# --- the metric-label checks in pure Python ----------------------------------

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_FORBIDDEN = {"job_id", "order_id", "trade_id", "user_id", "transaction_id", "request_id",
              "session_id", "correlation_id", "trace_id", "span_id", "client_order_id",
              "account_id", "email", "ip"}
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{16,}")
_DIGIT_RUN = re.compile(r"[0-9]{10,}")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


class PurePythonGuard:
    """The seed's guard as its summary describes it, with prodsafe's rules:
    every call checks the metric and label names (Prometheus rules, the
    forbidden names and patterns) and the values (unbounded-looking ones are
    warnings), and tracks the metric's label sets against its limit.

    memoize=True also gives a label set seen before its first answer again
    without checking, as prodsafe's guard does (a fairer floor for Python)."""

    def __init__(self, max_label_sets: int = 2000, memoize: bool = False):
        self.max_label_sets = max_label_sets
        self.memoize = memoize
        self.seen: dict[str, dict[frozenset, tuple]] = {}

    def validate_labels(self, metric: str, labels: dict[str, str]):
        label_set = frozenset(labels.items())
        seen = self.seen.setdefault(metric, {})
        if self.memoize:
            known = seen.get(label_set)
            if known is not None:
                return known
        violations = []
        if not _METRIC_NAME.match(metric):
            violations.append(("invalid_name", "", metric))
        for name, value in labels.items():
            if not _LABEL_NAME.match(name) or name.startswith("__"):
                violations.append(("invalid_name", name, value))
            elif (name in _FORBIDDEN or name.endswith(("_id", "_uuid", "_guid"))
                  or "timestamp" in name):
                violations.append(("forbidden", name, value))
            if (_UUID.search(value) or _HEX_RUN.search(value) or _DIGIT_RUN.search(value)
                    or _ISO.search(value)):
                violations.append(("unbounded", name, value))
        if label_set not in seen and len(seen) >= self.max_label_sets:
            violations.append(("limit", "", metric))
            return False, violations
        answer = (not any(v[0] != "unbounded" for v in violations), violations)
        seen[label_set] = answer
        return answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke pass")
    parser.add_argument("--unix", action="store_true",
                        help="both clients over the server's unix socket instead of TCP loopback")
    args = parser.parse_args()
    calls, rounds = (200, 3) if args.quick else (2000, 7)

    report = []
    with RedisServer(unix_socket=args.unix) as server:
        url = server.unix_url if args.unix else server.url
        seed_client = redis_py.from_url(url)
        seed = SeedSideEffectWrapper(seed_client)
        client = prodsafe.Redis(url)
        wrapper = prodsafe.SideEffectWrapper(client)
        cached = prodsafe.SideEffectWrapper(client, result_cache_size=1024)
        effect_type = prodsafe.EffectType.ORDER_PLACEMENT

        def fill():
            return {"order_id": "12345", "status": "filled"}

        counter = iter(range(10**9))

        def seed_first():
            seed.execute_once("ORDER_PLACEMENT", f"s{next(counter)}", fill)

        def prodsafe_first():
            wrapper.execute_once(effect_type, f"p{next(counter)}", fill)

        seed.execute_once("ORDER_PLACEMENT", "seed-dup", fill)
        wrapper.execute_once(effect_type, "dup", fill)
        cached.execute_once(effect_type, "dup-cached", fill)

        def seed_duplicate():
            seed.execute_once("ORDER_PLACEMENT", "seed-dup", fill)

        def prodsafe_duplicate():
            wrapper.execute_once(effect_type, "dup", fill)

        def prodsafe_duplicate_cached():
            cached.execute_once(effect_type, "dup-cached", fill)

        seed_first_s = best_per_call(seed_first, calls, rounds)
        prodsafe_first_s = best_per_call(prodsafe_first, calls, rounds)
        seed_dup_s = best_per_call(seed_duplicate, calls, rounds)
        prodsafe_dup_s = best_per_call(prodsafe_duplicate, calls, rounds)
        prodsafe_dup_cached_s = best_per_call(prodsafe_duplicate_cached, calls, rounds)
        report.append(("execute_once, first execution", seed_first_s, prodsafe_first_s))
        report.append(("execute_once, duplicate (from Redis)", seed_dup_s, prodsafe_dup_s))
        report.append(("execute_once, duplicate (result cache)", seed_dup_s,
                       prodsafe_dup_cached_s))

        labels = {"symbol": "BTCUSDT", "side": "buy", "status": "filled"}
        pure = PurePythonGuard()
        memo = PurePythonGuard(memoize=True)
        pure_s = best_per_call(lambda: pure.validate_labels("order_latency", labels),
                               calls * 10, rounds)
        memo_s = best_per_call(lambda: memo.validate_labels("order_latency", labels),
                               calls * 10, rounds)
        native_s = best_per_call(lambda: prodsafe.validate_metric_labels("order_latency", labels),
                                 calls * 10, rounds)
        report.append(("validate_metric_labels (vs the seed's check)", pure_s, native_s))
        report.append(("validate_metric_labels (vs Python memoized)", memo_s, native_s))

        breaker = prodsafe.CircuitBreaker(client, job_type="bench")

        class Empty:
            def can_retry(self):
                return (True, "")

        empty = Empty()
        floor_s = best_per_call(empty.can_retry, calls * 50, rounds)
        can_retry_s = best_per_call(breaker.can_retry, calls * 50, rounds)

    print(f"over {'the unix socket' if args.unix else 'TCP loopback'}")
    print(f"{'what':42} {'Python baseline':>16} {'prodsafe':>12} {'speed-up':>9}")
    for name, baseline, ours in report:
        print(f"{name:42} {baseline * 1e6:13.1f} us {ours * 1e6:9.1f} us {baseline / ours:8.1f}x")
    print(f"{'can_retry() in CLOSED':42} {floor_s * 1e9:13.0f} ns {can_retry_s * 1e9:9.0f} ns"
          f"   (baseline: an empty Python method)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
