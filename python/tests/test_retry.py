"""prodsafe's retry hardening: the seed's Phase 3 example, windows in Redis,
the histogram and detectors, and retry(fn, policy) with its budget."""

import datetime
import threading
import time

import pytest
import redis

import prodsafe
from prodsafe import (
    RetryAnomalyDetector,
    RetryPolicy,
    RetrySpikeDetector,
    RetryWindowTracker,
    retry,
)

FAST = dict(base_delay=0.001, max_delay=0.002)


def test_seed_phase3_example(redis_server, capsys):
    # The seed's Phase 3 usage example, verbatim but for the imports and the
    # URL (the test's own server).
    redis_client = redis.from_url(redis_server.url)

    # Track retry windows
    tracker = RetryWindowTracker(redis_client)
    window = tracker.start_window("job_123")
    tracker.increment_attempt("job_123")
    tracker.close_window("job_123", success=True)

    # Detect spikes
    spike_detector = RetrySpikeDetector()
    alert = spike_detector.record_retry()
    if alert:
        print(f"Spike detected: {alert}")

    # Detect anomalies
    anomaly_detector = RetryAnomalyDetector()
    anomalies = anomaly_detector.record_window(window)
    for anomaly in anomalies:
        print(f"Anomaly: {anomaly}")

    assert window.job_id == "job_123" and window.attempts == 1
    assert alert is None and anomalies == []
    assert capsys.readouterr().out == ""
    assert redis_client.exists("retry:window:job_123") == 0  # closed windows are removed


def test_windows_live_in_redis_and_every_tracker_shares_them(redis_server):
    reader = redis.from_url(redis_server.url, decode_responses=True)
    ours = RetryWindowTracker(prodsafe.Redis(redis_server.url), ttl=60)
    theirs = RetryWindowTracker(redis.from_url(redis_server.url))  # another process's view

    started = ours.start_window("job-7", "settlement")
    stored = reader.hgetall("retry:window:job-7")
    assert stored["job_type"] == "settlement" and stored["attempts"] == "1"
    assert int(stored["first"]) == int(started.first_attempt.timestamp() * 1000)
    assert 0 < reader.pttl("retry:window:job-7") <= 60_000

    second = theirs.increment_attempt("job-7")
    assert second.attempts == 2 and second.job_type == "settlement"
    assert reader.hget("retry:window:job-7", "attempts") == "2"

    closed = ours.close_window("job-7", success=False)
    assert closed.attempts == 2 and closed.success is False
    assert closed.first_attempt == started.first_attempt
    assert closed.duration >= 0 and closed.last_attempt >= closed.first_attempt
    assert closed.first_attempt.tzinfo == datetime.timezone.utc
    assert reader.exists("retry:window:job-7") == 0
    with pytest.raises(prodsafe.InvalidArgument):
        theirs.increment_attempt("job-7")  # closed


def test_a_corrupted_window_is_a_decode_error(redis_server):
    client = prodsafe.Redis(redis_server.url)
    client.set("retry:window:job-x", "not a hash")
    with pytest.raises(prodsafe.DecodeError):
        RetryWindowTracker(client).increment_attempt("job-x")


def test_in_process_tracker():
    tracker = RetryWindowTracker()
    tracker.start_window("a")
    assert tracker.increment_attempt("a").attempts == 2
    assert tracker.close_window("a", success=True).success is True


def test_histogram_uses_the_seed_buckets():
    histogram = prodsafe.RetryHistogram()
    for attempts in (1, 2, 3, 4, 5, 6, 10, 11, 20, 21, 100, 0):
        histogram.record(attempts)
    assert histogram.counts() == {"1": 2, "2": 1, "3": 1, "4-5": 2, "6-10": 2, "11-20": 2,
                                  "21+": 2}
    assert histogram.total == 12
    assert sum(histogram.fractions().values()) == pytest.approx(1.0)
    assert prodsafe.RetryHistogram.bucket_for(7) == "6-10"
    other = prodsafe.RetryHistogram()
    other.record(2)
    histogram.merge(other)
    assert histogram.counts()["2"] == 2
    with pytest.raises(prodsafe.WrongType):
        histogram.merge({"2": 1})
    with pytest.raises(prodsafe.WrongType):
        histogram.record("3")


def test_fleet_histogram_is_shared_through_redis(redis_server):
    prodsafe.FleetHistogram(prodsafe.Redis(redis_server.url)).record("payments", 3)
    fleet = prodsafe.FleetHistogram(redis.from_url(redis_server.url))
    fleet.record("payments", 12)
    assert fleet.snapshot("payments").counts()["3"] == 1
    assert fleet.snapshot("payments").counts()["11-20"] == 1
    fleet.reset("payments")
    assert fleet.snapshot("payments").total == 0


def test_anomaly_rules():
    detector = RetryAnomalyDetector(excessive_attempts=5, long_window=60,
                                    rate_window=10, rate_min_windows=4, high_retry_rate=0.5)
    [excessive] = detector.record_window(prodsafe.RetryWindow("j1", "payments", attempts=6))
    assert excessive.type == prodsafe.AnomalyType.EXCESSIVE_ATTEMPTS
    assert (excessive.value, excessive.threshold, excessive.job_id) == (6, 5, "j1")
    assert "j1" in str(excessive)
    [long_window] = detector.record_window(prodsafe.RetryWindow(
        "j2", "reports", duration=datetime.timedelta(minutes=2)))
    assert long_window.type == prodsafe.AnomalyType.LONG_RETRY_WINDOW
    assert long_window.value == pytest.approx(120) and long_window.threshold == 60
    found = []
    for i in range(6):
        found += detector.record_window(prodsafe.RetryWindow(f"r{i}", "quotes", attempts=2))
    assert [a.type for a in found] == [prodsafe.AnomalyType.HIGH_RETRY_RATE]  # once, not per window
    assert detector.anomalies == 3


def test_spike_detector_alerts_over_its_baseline():
    detector = RetrySpikeDetector(window=0.2, slots_per_window=2, baseline_windows=1,
                                  multiplier=3.0, min_count=10, cooldown=60)
    assert detector.record_retry() is None
    assert detector.baseline is None
    # A spike is measured against a window of history: wait until there is one.
    deadline = time.monotonic() + 5
    while detector.baseline is None:
        assert time.monotonic() < deadline, "no baseline after 5 s"
        time.sleep(0.01)
    assert detector.baseline <= 1
    alerts = [alert for alert in (detector.record_retry() for _ in range(50)) if alert]
    assert len(alerts) == 1  # then the cooldown
    [alert] = alerts
    assert alert.count >= 10 and alert.threshold_multiplier == 3.0
    assert alert.window == pytest.approx(0.2)
    assert str(alert) == alert.message and alert.message
    assert detector.alerts == 1


def test_bad_tracker_and_detector_input(redis):
    tracker = RetryWindowTracker(redis)
    with pytest.raises(prodsafe.InvalidArgument):
        tracker.increment_attempt("never-started")
    with pytest.raises(prodsafe.InvalidArgument):
        tracker.start_window("")
    with pytest.raises(prodsafe.WrongType):
        tracker.start_window(123)
    with pytest.raises(prodsafe.WrongType):
        tracker.close_window("job", success="yes")
    with pytest.raises(prodsafe.WrongType):
        RetryWindowTracker("redis://127.0.0.1:6379")
    with pytest.raises(prodsafe.InvalidArgument):
        RetryWindowTracker(redis, ttl=0)
    with pytest.raises(prodsafe.WrongType):
        RetryAnomalyDetector().record_window({"job_id": "x"})
    with pytest.raises(prodsafe.InvalidArgument):
        RetryAnomalyDetector(high_retry_rate=2)
    with pytest.raises(prodsafe.InvalidArgument):
        RetrySpikeDetector(multiplier=0.5)
    with pytest.raises(prodsafe.InvalidArgument):
        RetrySpikeDetector().record_retry(-1)
    with pytest.raises(prodsafe.InvalidArgument):
        prodsafe.RetryWindow("x", attempts=0)
    with pytest.raises(prodsafe.InvalidArgument):
        prodsafe.RetryWindow("x", first_attempt=datetime.datetime(2026, 1, 1))  # naive


class Flaky:
    """Raises the given exceptions in turn, then returns "done"."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_retry_retries_a_retryable_failure():
    fn = Flaky(prodsafe.StoreUnavailable("down"), prodsafe.Timeout("slow"))
    assert retry(fn, RetryPolicy(max_attempts=3, **FAST)) == "done"
    assert fn.calls == 3


def test_retry_stops_on_a_non_retryable_failure_and_raises_it_unchanged():
    error = prodsafe.InvalidArgument("bad order")
    fn = Flaky(prodsafe.StoreUnavailable("down"), error)
    with pytest.raises(prodsafe.InvalidArgument) as caught:
        retry(fn, RetryPolicy(max_attempts=5, **FAST))
    assert caught.value is error
    assert fn.calls == 2


def test_the_last_failure_propagates_unchanged_when_attempts_run_out():
    errors = [prodsafe.StoreUnavailable(f"down {i}") for i in range(3)]
    fn = Flaky(*errors)

    with pytest.raises(prodsafe.StoreUnavailable) as caught:
        retry(fn, RetryPolicy(max_attempts=3, **FAST))
    assert caught.value is errors[2]
    assert fn.calls == 3
    # Its traceback still reaches into fn.
    frames = [frame.name for frame in caught.traceback]
    assert "__call__" in frames


class ExchangeDown(Exception):
    pass


class Throttled(Exception):
    retryable = True  # any exception may say it is retryable


def test_which_python_exceptions_are_retried():
    # Not a prodsafe error, not marked: not retried.
    fn = Flaky(ExchangeDown())
    with pytest.raises(ExchangeDown):
        retry(fn, RetryPolicy(**FAST))
    assert fn.calls == 1
    # Marked retryable by its class.
    fn = Flaky(Throttled())
    assert retry(fn, RetryPolicy(**FAST)) == "done"
    # Named in retry_on (a class or a tuple), beside the retryable prodsafe errors.
    fn = Flaky(ExchangeDown(), prodsafe.StoreUnavailable("x"), ConnectionResetError())
    assert retry(fn, RetryPolicy(max_attempts=4, retry_on=(ExchangeDown, OSError), **FAST)) == "done"
    assert fn.calls == 4
    # A callable decides alone: here not even StoreUnavailable.
    fn = Flaky(ExchangeDown("503"), prodsafe.StoreUnavailable("x"))
    policy = RetryPolicy(max_attempts=5, retry_on=lambda e: "503" in str(e), **FAST)
    with pytest.raises(prodsafe.StoreUnavailable):
        retry(fn, policy)
    assert fn.calls == 2


def test_a_retry_on_callable_that_raises_means_no_retry(recwarn):
    def broken(exc):
        raise RuntimeError("broken predicate")

    fn = Flaky(prodsafe.StoreUnavailable("x"))
    with pytest.raises(prodsafe.StoreUnavailable):
        retry(fn, RetryPolicy(retry_on=broken, **FAST))
    assert fn.calls == 1


def test_keyboard_interrupt_is_never_retried():
    fn = Flaky(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        retry(fn, RetryPolicy(retry_on=BaseException, **FAST))
    assert fn.calls == 1


def test_the_budget_caps_retries():
    # ratio 0 and 0.2 retries a second over 10 s: two retries in all.
    budget = prodsafe.RetryBudget(ratio=0, min_retries_per_second=0.2, ttl=10)
    policy = RetryPolicy(max_attempts=10, budget=budget, **FAST)
    fn = Flaky(*[prodsafe.StoreUnavailable("down") for _ in range(10)])
    with pytest.raises(prodsafe.StoreUnavailable):
        retry(fn, policy)
    assert fn.calls == 3
    assert (budget.requests, budget.retries, budget.refused) == (1, 2, 1)
    fn = Flaky(prodsafe.StoreUnavailable("down"))
    with pytest.raises(prodsafe.StoreUnavailable):
        retry(fn, policy)  # spent: no retry at all
    assert fn.calls == 1
    assert policy.budget is budget


def test_allow_retry_can_stop_retrying():
    asked = []

    def gate():
        asked.append(True)
        return False

    fn = Flaky(prodsafe.StoreUnavailable("down"))
    with pytest.raises(prodsafe.StoreUnavailable):
        retry(fn, RetryPolicy(allow_retry=gate, **FAST))
    assert fn.calls == 1 and asked == [True]


def test_hooks_see_every_attempt_and_their_failures_are_contained():
    seen = []
    policy = RetryPolicy(
        max_attempts=3, jitter=prodsafe.Jitter.NONE, base_delay=0.001, max_delay=0.004,
        on_attempt=lambda attempt: seen.append(("attempt", attempt)),
        on_retry=lambda attempt, delay, reason: seen.append(("retry", attempt, delay, reason)),
        on_finish=lambda attempts, success, elapsed: seen.append(("finish", attempts, success)))
    fn = Flaky(prodsafe.StoreUnavailable("down"), prodsafe.StoreUnavailable("down"))
    assert retry(fn, policy) == "done"
    assert seen == [("attempt", 1), ("retry", 1, 0.001, "StoreUnavailable: down"),
                    ("attempt", 2), ("retry", 2, 0.002, "StoreUnavailable: down"),
                    ("attempt", 3), ("finish", 3, True)]

    def broken(*args):
        raise ValueError("hook bug")

    fn = Flaky(prodsafe.StoreUnavailable("down"))
    policy = RetryPolicy(on_attempt=broken, on_retry=broken, on_finish=broken, **FAST)
    assert retry(fn, policy) == "done"
    assert fn.calls == 2


def test_retry_if_result_and_the_retrying_decorator():
    results = iter([None, None, 42])
    assert retry(lambda: next(results), RetryPolicy(max_attempts=5, **FAST),
                 retry_if_result=lambda value: value is None) == 42
    results = iter([None, None, None])
    assert retry(lambda: next(results), RetryPolicy(max_attempts=2, **FAST),
                 retry_if_result=lambda value: value is None) is None  # the last result

    calls = []

    @prodsafe.retrying(RetryPolicy(max_attempts=3, **FAST))
    def place(symbol, *, quantity):
        calls.append(symbol)
        if len(calls) < 2:
            raise prodsafe.StoreUnavailable("down")
        return f"{symbol} x{quantity}"

    assert place("BTCUSDT", quantity=2) == "BTCUSDT x2"
    assert calls == ["BTCUSDT", "BTCUSDT"]


def test_already_in_progress_waits_its_retry_after():
    fn = Flaky(prodsafe.AlreadyInProgress("busy", key="k", retry_after=0.2))
    started = time.monotonic()
    assert retry(fn, RetryPolicy(**FAST)) == "done"
    assert time.monotonic() - started >= 0.2


def test_max_total_time_stops_retrying():
    fn = Flaky(*[prodsafe.StoreUnavailable("down") for _ in range(100)])
    policy = RetryPolicy(max_attempts=100, base_delay=0.05, max_delay=0.05,
                         jitter="none", max_total_time=0.12)
    with pytest.raises(prodsafe.StoreUnavailable):
        retry(fn, policy)
    assert 2 <= fn.calls <= 4


def test_the_backoff_sleep_releases_the_gil():
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1

    marks = []
    fn = Flaky(prodsafe.StoreUnavailable("down"))

    def attempt():
        marks.append(counter[0])
        return fn()

    policy = RetryPolicy(max_attempts=2, base_delay=0.3, max_delay=0.3, jitter="none",
                         on_retry=lambda *args: marks.append(counter[0]))
    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        assert retry(attempt, policy) == "done"
    finally:
        stop.set()
        spinner.join()
    # Between on_retry (just before the sleep) and the second attempt the
    # spinning thread ran: the sleep did not hold the GIL.
    assert marks[2] - marks[1] > 10_000


def test_threads_share_a_policy():
    policy = RetryPolicy(max_attempts=3, **FAST)
    results = []

    def worker():
        results.append(retry(Flaky(prodsafe.StoreUnavailable("x")), policy))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["done"] * 8


def test_the_loop_counts_in_the_given_registry():
    registry = prodsafe.Registry()
    policy = RetryPolicy(max_attempts=3, job_type="quotes", metrics=registry, **FAST)
    retry(Flaky(prodsafe.StoreUnavailable("x")), policy)
    text = registry.serialize()
    assert 'prodsafe_retry_attempts_total{job_type="quotes"} 2' in text
    assert 'prodsafe_retry_retries_total{job_type="quotes"} 1' in text


@pytest.mark.parametrize("kwargs, error", [
    ({"max_attempts": 0}, prodsafe.InvalidArgument),
    ({"max_attempts": "3"}, prodsafe.WrongType),
    ({"base_delay": -1}, prodsafe.InvalidArgument),
    ({"base_delay": 0}, prodsafe.InvalidArgument),
    ({"base_delay": 2, "max_delay": 1}, prodsafe.InvalidArgument),
    ({"max_delay": 90_000}, prodsafe.InvalidArgument),
    ({"jitter": "bogus"}, prodsafe.InvalidArgument),
    ({"jitter": 1}, prodsafe.WrongType),
    ({"retry_on": 5}, prodsafe.WrongType),
    ({"retry_on": (ValueError, "x")}, prodsafe.WrongType),
    ({"budget": 0.2}, prodsafe.WrongType),
    ({"on_retry": "log"}, prodsafe.WrongType),
    ({"metrics": "default"}, prodsafe.WrongType),
    ({"max_total_time": -1}, prodsafe.InvalidArgument),
])
def test_bad_policies_are_refused(kwargs, error):
    with pytest.raises(error):
        RetryPolicy(**kwargs)


def test_bad_retry_calls_are_refused():
    with pytest.raises(prodsafe.WrongType):
        retry(5)
    with pytest.raises(prodsafe.WrongType):
        retry(lambda: 1, {"max_attempts": 3})
    with pytest.raises(prodsafe.WrongType):
        retry(lambda: 1, retry_if_result=True)
    with pytest.raises(prodsafe.WrongType):
        prodsafe.retrying("policy")
    with pytest.raises(prodsafe.InvalidArgument):
        prodsafe.RetryBudget(ratio=-1)
    with pytest.raises(prodsafe.InvalidArgument):
        prodsafe.RetryBudget(ttl=0)


def test_a_job_id_that_is_not_utf8_encodable_is_invalid_argument():
    with pytest.raises(prodsafe.InvalidArgument):
        RetryWindowTracker().start_window("\ud800")
    with pytest.raises(prodsafe.InvalidArgument):
        RetryPolicy(jitter="\ud800")
    reasons = []
    fn = Flaky(prodsafe.StoreUnavailable("bad \ud800 text"))
    assert retry(fn, RetryPolicy(on_retry=lambda a, d, reason: reasons.append(reason),
                                 **FAST)) == "done"
    assert reasons == ["StoreUnavailable: bad \\ud800 text"]


def test_retry_feeds_the_tracker_histogram_and_detectors(redis_server):
    reader = redis.from_url(redis_server.url, decode_responses=True)
    tracker = RetryWindowTracker(prodsafe.Redis(redis_server.url))
    histogram = prodsafe.RetryHistogram()
    spikes = RetrySpikeDetector()
    anomalies = RetryAnomalyDetector(excessive_attempts=3)
    found, windows_seen = [], []

    def fn_reading_its_window():
        # The window is in Redis while the call runs.
        windows_seen.append(reader.hget("retry:window:settle-1", "attempts"))
        if len(windows_seen) < 3:
            raise prodsafe.StoreUnavailable("down")
        return "settled"

    policy = RetryPolicy(max_attempts=5, job_type="settlement", **FAST)
    assert retry(fn_reading_its_window, policy, job_id="settle-1", tracker=tracker,
                 histogram=histogram, spike_detector=spikes, anomaly_detector=anomalies,
                 on_anomaly=found.append) == "settled"
    assert windows_seen == ["1", "2", "3"]
    assert reader.exists("retry:window:settle-1") == 0  # closed
    assert histogram.counts()["3"] == 1
    assert spikes.current_count == 2  # the two retries
    [anomaly] = found
    assert anomaly.type == prodsafe.AnomalyType.EXCESSIVE_ATTEMPTS
    assert (anomaly.job_id, anomaly.job_type) == ("settle-1", "settlement")


def test_a_failing_observer_never_changes_the_outcome(redis_server):
    tracker = RetryWindowTracker(prodsafe.Redis(redis_server.url, connect_timeout=0.2,
                                                command_timeout=0.2))
    redis_server.pause()  # the tracker's Redis answers nothing (SIGSTOP; killed at the end)

    def broken(anomaly):
        raise RuntimeError("alerting is down")

    fn = Flaky(prodsafe.InvalidArgument("bad order"))
    with pytest.raises(prodsafe.InvalidArgument):  # fn's own failure, not the tracker's
        retry(fn, RetryPolicy(**FAST), job_id="j", tracker=tracker,
              anomaly_detector=RetryAnomalyDetector(excessive_attempts=1), on_anomaly=broken)
    fn = Flaky()
    assert retry(fn, RetryPolicy(**FAST), job_id="j", tracker=tracker) == "done"


def test_bad_observers_are_refused():
    with pytest.raises(prodsafe.InvalidArgument):
        retry(lambda: 1, tracker=RetryWindowTracker())  # no job_id
    with pytest.raises(prodsafe.WrongType):
        retry(lambda: 1, job_id="j", tracker="redis")
    with pytest.raises(prodsafe.WrongType):
        retry(lambda: 1, histogram={})
    with pytest.raises(prodsafe.WrongType):
        retry(lambda: 1, spike_detector=RetryAnomalyDetector())
    with pytest.raises(prodsafe.WrongType):
        retry(lambda: 1, anomaly_detector=RetrySpikeDetector())
    with pytest.raises(prodsafe.WrongType):
        retry(lambda: 1, on_anomaly="print")
    with pytest.raises(prodsafe.WrongType):
        retry(lambda: 1, job_id=5)


class Interrupted(Exception):
    pass


def test_a_signal_handler_that_raises_ends_a_long_backoff():
    import os
    import signal

    def handler(signum, frame):
        raise Interrupted()

    previous = signal.signal(signal.SIGUSR1, handler)
    sleeping = threading.Event()

    def interrupt():
        assert sleeping.wait(10)
        os.kill(os.getpid(), signal.SIGUSR1)

    interrupter = threading.Thread(target=interrupt)
    interrupter.start()
    fn = Flaky(prodsafe.StoreUnavailable("down"))
    policy = RetryPolicy(max_attempts=2, base_delay=30, max_delay=30, jitter="none",
                         on_retry=lambda *args: sleeping.set())
    started = time.monotonic()
    try:
        with pytest.raises(Interrupted):  # as Ctrl-C's KeyboardInterrupt would
            retry(fn, policy)
    finally:
        interrupter.join()
        signal.signal(signal.SIGUSR1, previous)
    assert time.monotonic() - started < 5  # not the 30 s backoff
    assert fn.calls == 1


def test_another_process_advances_the_same_window(redis_server):
    import os
    import subprocess
    import sys

    tracker = RetryWindowTracker(redis.from_url(redis_server.url))
    tracker.start_window("job-shared", "settlement")
    child = subprocess.run(
        [sys.executable, "-c",
         "import sys, prodsafe\n"
         "tracker = prodsafe.RetryWindowTracker(prodsafe.Redis(sys.argv[1]))\n"
         "print(tracker.increment_attempt('job-shared').attempts)\n",
         redis_server.url],
        capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "2"
    closed = tracker.close_window("job-shared", success=True)
    assert (closed.attempts, closed.job_type) == (2, "settlement")
