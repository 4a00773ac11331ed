"""A small fleet's state in a test's own redis-server, written through the
prodsafe Python package (the same writers a real fleet uses): circuit breakers
in every state, retry histograms and open windows, and effect records that
completed, failed, and were orphaned by a worker killed mid-effect."""

import os
import signal
import subprocess
import sys
import time

import prodsafe
from prodsafe import CircuitBreaker, FleetHistogram, RetryWindowTracker, SideEffectWrapper

# What seed() writes, for the test to find on the page.
BREAKERS = {
    "payments": "OPEN",
    "ledger": "FORCED_OPEN",
    "positions": "DISABLED",
    "quotes": "CLOSED",
    "settlement": "HALF_OPEN",
}
THRESHOLD = 3
# attempts -> jobs, per job type
HISTOGRAMS = {
    "place_order": {1: 40, 2: 7, 3: 3, 5: 2, 8: 1},
    "sync_ledger": {1: 12, 2: 1, 25: 1},
}
OPEN_WINDOWS = {"order-17": ("place_order", 4), "ledger-3": ("sync_ledger", 2)}
COMPLETED = ["o-1", "o-2", "o-3"]
SPIKE_MESSAGE = "retry spike: 42 retries in the last 60000 ms (0.7/s), 6.0x the baseline of 7.0"
FAILED = "o-9"
ORPHAN = "o-orphan"

_ORPHAN_WORKER = """
import sys, time
import prodsafe
wrapper = prodsafe.SideEffectWrapper(prodsafe.Redis(sys.argv[1]), lease=1, renew_leases=False,
                                     journal_dir=sys.argv[2])
def effect():
    print("running", flush=True)
    time.sleep(600)
wrapper.execute_once("place_order", sys.argv[3], effect)
"""


def _orphan(url, journal_dir, entity_id):
    """A worker SIGKILLed inside its effect: its record stays in progress and
    its one-second lease runs out."""
    worker = subprocess.Popen([sys.executable, "-c", _ORPHAN_WORKER, url, journal_dir, entity_id],
                              stdout=subprocess.PIPE, env=dict(os.environ))
    try:
        assert worker.stdout.readline().strip() == b"running"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()


def seed(url, journal_dir):
    redis = prodsafe.Redis(url)
    # Every alert also goes to the fleet's history in Redis (alerts:recent).
    hooks = prodsafe.AlertHooks()
    history = hooks.add_redis_stream(redis)
    opts = dict(failure_threshold=THRESHOLD, subscribe=False)

    payments = CircuitBreaker(redis, "payments", break_duration=600, max_break_duration=600,
                              alert_hooks=hooks, **opts)
    for _ in range(THRESHOLD):
        payments.record_failure()
    CircuitBreaker(redis, "ledger", **opts).force_open()
    CircuitBreaker(redis, "positions", **opts).disable()
    quotes = CircuitBreaker(redis, "quotes", **opts)
    for _ in range(5):
        quotes.record_success()
    quotes.record_failure()
    settlement = CircuitBreaker(redis, "settlement", break_duration=0.2, max_half_open_wait=600,
                                **opts)
    for _ in range(THRESHOLD):
        settlement.record_failure()
    time.sleep(0.3)
    allowed, _ = settlement.can_retry()  # takes the probe permit: HALF_OPEN
    assert allowed

    fleet = FleetHistogram(redis)
    for job_type, counts in HISTOGRAMS.items():
        for attempts, jobs in counts.items():
            for _ in range(jobs):
                fleet.record(job_type, attempts)
    tracker = RetryWindowTracker(redis)
    for job_id, (job_type, attempts) in OPEN_WINDOWS.items():
        tracker.start_window(job_id, job_type)
        for _ in range(attempts - 1):
            tracker.increment_attempt(job_id)

    wrapper = SideEffectWrapper(redis, record_failures=True, journal_dir=journal_dir)
    for entity_id in COMPLETED:
        wrapper.execute_once("place_order", entity_id, lambda: {"filled": True})

    def rejected():
        raise RuntimeError("exchange rejected the order: insufficient margin")

    try:
        wrapper.execute_once("place_order", FAILED, rejected)
    except RuntimeError:
        pass
    _orphan(url, journal_dir, ORPHAN)
    time.sleep(1.2)  # past the orphan's lease
    hooks.fire(prodsafe.RETRY_SPIKE, SPIKE_MESSAGE, {"job_type": "place_order"})
    assert history.flush(10) and history.stats()["written"] == 2, history.stats()
    for job_type, state in BREAKERS.items():
        got = CircuitBreaker(redis, job_type, **opts).state.name
        assert got == state, f"{job_type}: seeded {got}, wanted {state}"
