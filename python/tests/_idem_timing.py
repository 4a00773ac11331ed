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


def _interleaved(runs, ids, batches=20):
    """Median microseconds per call of each run(id) in `runs` (a dict), over
    `batches` batches of ids, the runs taking turns batch by batch so that
    load from other processes falls on all of them alike."""
    size = max(1, len(ids) // batches)
    samples = {name: [] for name in runs}
    for start in range(0, size * batches, size):
        chunk = ids[start:start + size]
        for name, run in runs.items():
            began = time.perf_counter()
            for entity_id in chunk:
                run(entity_id)
            samples[name].append((time.perf_counter() - began) / len(chunk) * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def measure(url: str, rounds: int = 2000) -> dict[str, float]:
    result = {"order_id": "12345", "status": "filled", "fills": [0.01, 50000.0]}
    fn = lambda: result  # noqa: E731
    ids = [f"t-{i}" for i in range(rounds)]
    with tempfile.TemporaryDirectory() as journal:
        wrapper = prodsafe.SideEffectWrapper(prodsafe.Redis(url), journal_directory=journal)
        # result_cache_size: this process's duplicates without a round trip
        cached = prodsafe.SideEffectWrapper(prodsafe.Redis(url), journal_directory=journal,
                                            result_cache_size=rounds)
        plain = redis_py.from_url(url)
        plain.ping()
        wrapper.execute_once("WARM", "w", fn)
        runs = {
            "prodsafe": lambda i: wrapper.execute_once("P", i, fn),
            "prodsafe_cached": lambda i: cached.execute_once("C", i, fn),
            "setnx": lambda i: seed_execute_once(plain, "S", i, fn),
        }
        first = _interleaved(runs, ids)
        duplicate = _interleaved(runs, ids)
        assert wrapper.execute_once("P", ids[0], fn) == (False, result)
        assert seed_execute_once(plain, "S", ids[0], fn) == (False, result)
    figures = {f"{name}_first": value for name, value in first.items()}
    figures.update({f"{name}_duplicate": value for name, value in duplicate.items()})
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
