"""Quick timing, not a benchmark: prodsafe's execute_once against the seed's
own design written in redis-py (SETNX a marker, run, SET the JSON result;
a duplicate is SETNX + GET), on the same redis-server.

    cd python/tests && PYTHONPATH=<build>/python /usr/bin/python3 _idem_timing.py [rounds]

Prints microseconds per call (median of 5 batches) for a first execution
and for a duplicate.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time

import redis as redis_py

import prodsafe


def seed_execute_once(client, effect_type, entity_id, fn, ttl=72 * 3600):
    """The seed's SideEffectWrapper as its summary describes it."""
    key = f"effect:{effect_type}:{entity_id}"
    if client.set(key, json.dumps({"status": "in_progress"}), nx=True, ex=ttl):
        result = fn()
        client.set(key, json.dumps({"status": "completed", "result": result}), ex=ttl)
        return True, result
    data = json.loads(client.get(key))
    return False, data.get("result")


def _per_call(run, ids, batches=5):
    """Median microseconds per call of run(id) over `batches` batches of ids."""
    size = max(1, len(ids) // batches)
    samples = []
    for start in range(0, size * batches, size):
        chunk = ids[start:start + size]
        began = time.perf_counter()
        for entity_id in chunk:
            run(entity_id)
        samples.append((time.perf_counter() - began) / len(chunk) * 1e6)
    return statistics.median(samples)


def measure(url: str, rounds: int = 2000) -> dict[str, float]:
    result = {"order_id": "12345", "status": "filled", "fills": [0.01, 50000.0]}
    fn = lambda: result  # noqa: E731
    ids = [f"t-{i}" for i in range(rounds)]
    with tempfile.TemporaryDirectory() as journal:
        wrapper = prodsafe.SideEffectWrapper(prodsafe.Redis(url), journal_directory=journal)
        plain = redis_py.from_url(url)
        plain.ping()
        wrapper.execute_once("WARM", "w", fn)
        figures = {
            "prodsafe_first": _per_call(lambda i: wrapper.execute_once("P", i, fn), ids),
            "prodsafe_duplicate": _per_call(lambda i: wrapper.execute_once("P", i, fn), ids),
            "setnx_first": _per_call(lambda i: seed_execute_once(plain, "S", i, fn), ids),
            "setnx_duplicate": _per_call(lambda i: seed_execute_once(plain, "S", i, fn), ids),
        }
        assert wrapper.execute_once("P", ids[0], fn) == (False, result)
        assert seed_execute_once(plain, "S", ids[0], fn) == (False, result)
        return figures


if __name__ == "__main__":
    from prodsafe.testing import RedisServer

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with RedisServer() as server:
        figures = measure(server.url, rounds)
    for name, value in figures.items():
        print(f"{name:20s} {value:8.1f} us/call")
    print(f"first:     prodsafe {figures['setnx_first'] / figures['prodsafe_first']:.2f}x faster")
    print(f"duplicate: prodsafe "
          f"{figures['setnx_duplicate'] / figures['prodsafe_duplicate']:.2f}x faster")
