"""What `prodsafe dashboard` costs Redis per refresh when the fleet keeps
1,000,000 effect records, against the ways of reading them it avoids, all
measured in one run on one private redis-server (started here):

- KEYS effect:*  — one command that walks every key while Redis serves no one;
- a whole SCAN sweep of effect:* (COUNT 500), done at once;
- the dashboard: a bounded slice of a sweep of every key per refresh (--scan-budget,
  default 10,000 keys), each effect record read in a pipeline (HMGET of three fields).

Figures: Redis's own time (INFO commandstats, microseconds spent in commands)
per refresh, the dashboard's wall time per refresh, and the longest a PING
from another client waited while each ran (the stall other clients see). The
records are copies of one written by the real SideEffectWrapper.

Run it with `make bench`, or after a build:
    PYTHONPATH=build/python /usr/bin/python3 bench/dashboard_bench.py \\
        --cli build/tools/prodsafe/prodsafe [--records N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import redis as redis_py

import prodsafe
from prodsafe.testing import RedisServer

# Copies the template record (ARGV[3..]) to effect:<type>:<n> for n in
# ARGV[1]..ARGV[2], a mix of types and states, with the template's TTL.
_FILL = """
local types = {'place_order', 'place_order', 'place_order', 'sync_ledger', 'cancel_order'}
local ttl = tonumber(ARGV[3])
for n = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  local key = 'effect:' .. types[(n % 5) + 1] .. ':' .. n
  local fields = {}
  for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', key, unpack(fields))
  if n % 100 == 0 then redis.call('HSET', key, 'state', 'failed', 'error', 'rejected') end
  if n % 1000 == 1 then redis.call('HSET', key, 'state', 'in_progress', 'lease_until', '1') end
  redis.call('PEXPIRE', key, ttl)
end
return 1
"""


class PingProber:
    """PINGs Redis from its own connection in a loop; the longest wait."""

    def __init__(self, url):
        self.client = redis_py.Redis.from_url(url)
        self.longest = 0.0
        self.running = False
        self.thread = None

    def __enter__(self):
        self.longest = 0.0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while self.running:
            start = time.perf_counter()
            self.client.ping()
            self.longest = max(self.longest, time.perf_counter() - start)
            time.sleep(0.0005)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def command_usec(client) -> int:
    """Microseconds Redis spent in commands since the last CONFIG RESETSTAT
    (the prober's PINGs left out)."""
    stats = client.info("commandstats")
    return sum(v["usec"] for k, v in stats.items() if k != "cmdstat_ping")


def fill(url: str, client, records: int) -> None:
    wrapper = prodsafe.SideEffectWrapper(prodsafe.Redis(url))
    wrapper.execute_once("place_order", "template", lambda: {"order_id": "A-1", "filled": True})
    template = client.hgetall("effect:place_order:template")
    ttl = client.pttl("effect:place_order:template")
    client.delete("effect:place_order:template")
    flat = [x for kv in template.items() for x in kv]
    fill_script = client.register_script(_FILL)
    batch = 20_000
    for first in range(0, records, batch):
        fill_script(args=[first, min(first + batch, records) - 1, ttl, *flat])
    assert client.dbsize() == records, client.dbsize()


def refreshes(url: str, count: int):
    """(generated_at_ms, read_ms) of `count` successive dashboard refreshes."""
    seen = {}
    deadline = time.monotonic() + 600
    while len(seen) < count and time.monotonic() < deadline:
        with urllib.request.urlopen(url + "api/state", timeout=10) as response:
            doc = json.load(response)
        if doc.get("redis", {}).get("reachable"):
            seen[doc["generated_at_ms"]] = doc
        time.sleep(0.02)
    return [seen[k] for k in sorted(seen)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", default="build/tools/prodsafe/prodsafe")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--refreshes", type=int, default=20)
    parser.add_argument("--scan-budget", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="50,000 records, 5 refreshes")
    args = parser.parse_args()
    if args.quick:
        args.records, args.refreshes = 50_000, 5

    with RedisServer() as server:
        client = redis_py.Redis.from_url(server.url)
        started = time.perf_counter()
        fill(server.url, client, args.records)
        print(f"{args.records:,} effect records written in {time.perf_counter() - started:.1f} s "
              f"({client.info('memory')['used_memory_human']} in Redis)")

        # KEYS: one command over every key.
        client.config_resetstat()
        with PingProber(server.url) as prober:
            time.sleep(0.05)
            start = time.perf_counter()
            keys = client.keys("effect:*")
            keys_wall = time.perf_counter() - start
            time.sleep(0.05)
        keys_usec = command_usec(client)
        keys_stall = prober.longest
        assert len(keys) == args.records
        del keys

        # A whole SCAN sweep at once.
        client.config_resetstat()
        with PingProber(server.url) as prober:
            start = time.perf_counter()
            cursor, calls, found = 0, 0, 0
            while True:
                cursor, batch = client.scan(cursor, match="effect:*", count=500)
                calls += 1
                found += len(batch)
                if cursor == 0:
                    break
            sweep_wall = time.perf_counter() - start
        sweep_usec = command_usec(client)
        sweep_stall = prober.longest

        # The dashboard, refreshing every 200 ms (checks once, at its start).
        dashboard = subprocess.Popen(
            [args.cli, "dashboard", "--redis", server.url, "--listen", "127.0.0.1:0",
             "--refresh", "200ms", "--checks-every", "10m", "--scan-budget", str(args.scan_budget)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = re.search(r"at (http://\S+/)", dashboard.stdout.readline()).group(1)
            refreshes(url, 2)  # past the first (with the runtime checks)
            client.config_resetstat()
            with PingProber(server.url) as prober:
                docs = refreshes(url, args.refreshes + 1)[1:]
            dashboard_usec = command_usec(client)
            dashboard_stall = prober.longest
        finally:
            dashboard.terminate()
            dashboard.wait(timeout=15)
        # commandstats covers the refreshes seen and, at most, the one under way.
        per_refresh_usec = dashboard_usec / len(docs)
        read_ms = statistics.median(d["redis"]["read_ms"] for d in docs)

    refreshes_per_sweep = calls * 500 / args.scan_budget
    print(f"\nKEYS effect:*            {keys_usec / 1000:9.1f} ms of Redis time in one command "
          f"({keys_wall * 1000:.0f} ms wall); longest PING wait {keys_stall * 1000:.1f} ms")
    print(f"whole SCAN sweep         {sweep_usec / 1000:9.1f} ms of Redis time in {calls:,} calls "
          f"({sweep_wall * 1000:.0f} ms wall, keys only); longest PING wait {sweep_stall * 1000:.1f} ms")
    print(f"dashboard, per refresh   {per_refresh_usec / 1000:9.1f} ms of Redis time "
          f"(SCAN of ~{args.scan_budget:,} keys, an HMGET of each effect record); {read_ms:.0f} ms wall (median "
          f"of {len(docs)}); longest PING wait {dashboard_stall * 1000:.1f} ms")
    print(f"\nA full sweep takes ~{refreshes_per_sweep:.0f} refreshes "
          f"(~{refreshes_per_sweep:.0f} s at the default --refresh 1s).")
    print(f"Per refresh, against KEYS' one command: {per_refresh_usec / keys_usec:.2f}x its Redis "
          f"time, {dashboard_stall / keys_stall:.2f}x its longest stall of other clients.")
    print(f"Per refresh, against the whole sweep done at once: {per_refresh_usec / sweep_usec:.2f}x "
          f"its Redis time (the dashboard also reads each key's record).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
