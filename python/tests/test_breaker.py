"""prodsafe.CircuitBreaker: the seed's usage examples, alerts on transitions,
the breaker shared across processes, manual control, bad input."""

import datetime
import os
import subprocess
import sys
import textwrap
import threading
import time
import types

import pytest
import redis as redis_py

import prodsafe
from prodsafe import AlertHooks, CircuitBreaker, CircuitState, InMemoryBreakerStore
from _support import Recorder, poll


# --- the seed's examples ------------------------------------------------------

def test_the_seeds_phase_4_usage_example(redis_server, capsys):
    from prodsafe import CircuitBreaker, AlertHooks
    import redis

    # Set up alert hooks
    alert_hooks = AlertHooks()

    def log_hook(event_type, message, context):
        print(f"ALERT: {event_type} - {message}")
        # Send to logging system

    def metric_hook(event_type, message, context):
        # Send to metrics system (Prometheus, StatsD)
        pass

    def webhook_hook(event_type, message, context):
        # Send to PagerDuty, Slack, etc.
        pass

    alert_hooks.add_log_hook(log_hook)
    alert_hooks.add_metric_hook(metric_hook)
    alert_hooks.add_webhook_hook(webhook_hook)

    # Create circuit breaker with alert hooks
    redis_client = redis.from_url(redis_server.url)
    breaker = CircuitBreaker(
        redis_client,
        job_type="trading",
        failure_threshold=10,
        time_window_minutes=5,
        alert_hooks=alert_hooks
    )

    # Record failures
    breaker.record_failure()  # Alerts will trigger when threshold exceeded

    # (not the seed's) One failure is below the threshold: no alert yet; the
    # tenth opens the breaker and the log hook prints.
    assert "ALERT" not in capsys.readouterr().out
    assert breaker.can_retry()[0] is True
    for _ in range(9):
        breaker.record_failure()
    out = capsys.readouterr().out
    assert out.startswith("ALERT: circuit_opened - circuit trading opened after 10 failures")
    assert out.count("ALERT") == 1
    assert breaker.can_retry()[0] is False
    assert breaker.state == CircuitState.OPEN
    assert alert_hooks.fired == 1 and len(alert_hooks) == 3


def _integration_guide(settings, logger, perform_operation):
    """The integration guide's "Circuit Breaker with Alerts", its body
    verbatim (wrapped in a function for its `return`)."""
    from prodsafe import CircuitBreaker, AlertHooks
    import redis

    alert_hooks = AlertHooks()
    # Add your alert hooks here

    redis_client = redis.from_url(settings.REDIS_URL)
    breaker = CircuitBreaker(
        redis_client,
        job_type="trading",
        alert_hooks=alert_hooks
    )

    # Use in retry logic
    if not breaker.can_retry()[0]:
        logger.error("Circuit breaker is open")
        return

    # Perform operation
    try:
        result = perform_operation()
        breaker.record_success()
    except Exception as e:
        breaker.record_failure()
        raise


class _Logger:
    def __init__(self):
        self.errors = []

    def error(self, message, *args):
        self.errors.append(message % args if args else message)


def test_the_integration_guides_circuit_breaker_with_alerts(redis_server):
    settings = types.SimpleNamespace(REDIS_URL=redis_server.url)
    logger = _Logger()
    calls = []

    def perform_operation():
        calls.append("ok")
        return "filled"

    _integration_guide(settings, logger, perform_operation)
    assert calls == ["ok"] and logger.errors == []

    def failing_operation():
        calls.append("boom")
        raise ConnectionError("exchange down")

    # Each failure propagates unchanged and is recorded; the tenth (the
    # default threshold) opens the breaker for the next caller.
    for _ in range(10):
        with pytest.raises(ConnectionError, match="exchange down"):
            _integration_guide(settings, logger, failing_operation)
    assert calls.count("boom") == 10
    _integration_guide(settings, logger, perform_operation)
    assert logger.errors == ["Circuit breaker is open"]
    assert calls.count("ok") == 1  # refused: not called again
    assert prodsafe.Redis(redis_server.url).execute_command(
        "HGET", "circuit:trading", "state") == b"OPEN"


# --- alerts on transitions ----------------------------------------------------

def test_opening_fires_the_hooks_with_the_seeds_context(redis):
    hooks = AlertHooks()
    log, metric, event = Recorder(), Recorder(), Recorder()
    hooks.add_log_hook(log)
    hooks.add_metric_hook(metric)
    hooks.add_event_hook(event)
    breaker = CircuitBreaker(redis, "payments", failure_threshold=3, time_window_minutes=2,
                             alert_hooks=hooks)
    breaker.record_failure()
    breaker.record_failure()
    assert log.calls == []
    before = time.time()
    breaker.record_failure()
    assert log.calls == metric.calls == event.calls
    assert len(log.calls) == 1
    event_type, message, context = log.calls[0]
    assert event_type == prodsafe.CIRCUIT_OPENED == "circuit_opened"
    assert message.startswith("circuit payments opened after 3 failures in 120 s (threshold 3)")
    assert context["job_type"] == "payments"
    assert context["failure_count"] == 3
    assert context["state"] == "OPEN"
    assert context["previous_state"] == "CLOSED"
    assert context["threshold"] == 3
    assert context["window"] == 120.0
    assert before - 1 <= context["timestamp"] <= time.time() + 1
    assert context["instance"].endswith(f":{os.getpid()}")
    assert context["extra"] == {"trips": "1"}
    # Further failures while open fire nothing more.
    breaker.record_failure()
    assert len(log.calls) == 1


def test_half_open_probe_success_closes_with_alerts(redis):
    hooks = AlertHooks()
    recorder = Recorder()
    hooks.add_event_hook(recorder)
    breaker = CircuitBreaker(redis, "probe", failure_threshold=1, break_duration=0.2,
                             alert_hooks=hooks)
    breaker.record_failure()
    allowed, reason = breaker.can_retry()
    assert allowed is False and reason.startswith("circuit probe is open for")
    # After the break, one probe is let through; its success closes.
    assert poll(lambda: breaker.can_retry()[0])
    assert breaker.state == CircuitState.HALF_OPEN
    second = breaker.check()
    assert not second and second.state == CircuitState.HALF_OPEN  # the probe is out
    breaker.record_success()
    assert breaker.state == "CLOSED"
    assert recorder.events() == ["circuit_opened", "circuit_half_open", "circuit_closed"]


def test_a_permission_recorded_from_another_thread_decides(redis):
    breaker = CircuitBreaker(redis, "threads", failure_threshold=1, break_duration=0.2)
    breaker.record_failure()
    granted = []

    def probe():
        permission = breaker.check()
        if permission.allowed:
            granted.append(permission)
        return permission.allowed

    assert poll(probe)
    permission = granted[0]
    assert permission.permit != 0 and permission.state == CircuitState.HALF_OPEN
    assert permission.reason is None and permission.retry_after == 0.0
    # The outcome of the call this permission let through, reported by
    # another thread (which holds no permit of its own), closes the breaker.
    worker = threading.Thread(target=breaker.record_success, args=(permission,))
    worker.start()
    worker.join(10)
    assert breaker.state == CircuitState.CLOSED


def test_manual_control_is_fleet_wide(redis):
    hooks = AlertHooks()
    recorder = Recorder()
    hooks.add_log_hook(recorder)
    one = CircuitBreaker(redis, "manual", alert_hooks=hooks)
    two = CircuitBreaker(redis, "manual")
    one.force_open()
    assert two.state == CircuitState.FORCED_OPEN
    assert poll(lambda: two.can_retry() == (False, "circuit manual is forced open"))
    one.disable()
    assert two.state == "DISABLED" and two.can_retry() == (True, None)
    one.force_close()
    assert two.state == "CLOSED"
    one.record_failure()
    assert one.snapshot()["failures"] == 1
    one.reset()
    assert one.snapshot() == {"state": CircuitState.CLOSED, "failures": 0, "successes": 0,
                              "trips": 0, "retry_after": 0.0, "forced_by": None,
                              "forced_at": None}
    assert recorder.events() == ["circuit_opened", "circuit_disabled", "circuit_closed"]
    assert recorder.calls[0][2]["state"] == "FORCED_OPEN"


def test_forcing_records_who_and_when(redis):
    breaker = CircuitBreaker(redis, "forced")
    before = time.time()
    breaker.force_open()
    snapshot = breaker.snapshot()
    host_pid = snapshot["forced_by"]
    assert host_pid.endswith(f":{os.getpid()}"), host_pid
    assert before - 5 < snapshot["forced_at"] < time.time() + 5
    breaker.disable(actor="alice (incident 42)")
    assert breaker.snapshot()["forced_by"] == "alice (incident 42)"
    with pytest.raises(prodsafe.InvalidArgument, match="at most 256 bytes"):
        breaker.force_close("x" * 300)
    assert breaker.state == "DISABLED"
    with pytest.raises(prodsafe.WrongType):
        breaker.force_open(actor=42)
    breaker.reset()
    assert breaker.snapshot()["forced_by"] is None


def test_can_retry_in_closed_makes_no_round_trip(redis):
    breaker = CircuitBreaker(redis, "fast", staleness=60)
    assert breaker.can_retry() == (True, None)
    before = breaker.store_operations
    for _ in range(10_000):
        assert breaker.can_retry()[0]
    assert breaker.store_operations == before


def test_can_retry_is_under_a_microsecond_in_closed(redis):
    import timeit

    breaker = CircuitBreaker(redis, "timed")
    breaker.can_retry()
    # Best of 5 runs, so that another process on the machine does not decide.
    best = min(timeit.repeat(breaker.can_retry, number=100_000, repeat=5)) / 100_000
    assert best < 1e-6, f"can_retry() took {best * 1e9:.0f} ns"


def test_the_in_memory_store_is_shared_by_breakers_of_one_process():
    store = InMemoryBreakerStore()
    hooks = AlertHooks()
    recorder = Recorder()
    hooks.add_log_hook(recorder)
    worker_a = CircuitBreaker(store, "unit", failure_threshold=2, alert_hooks=hooks)
    worker_b = CircuitBreaker(store, "unit", failure_threshold=2)
    other_store = CircuitBreaker(InMemoryBreakerStore(), "unit", failure_threshold=2)
    worker_a.record_failure()
    worker_a.record_failure()
    assert recorder.events() == ["circuit_opened"]
    assert worker_b.can_retry()[0] is False
    assert worker_b.snapshot()["trips"] == 1
    assert other_store.can_retry() == (True, None)


def test_a_redis_py_client_and_a_prodsafe_redis_share_the_breaker(redis_server):
    via_redis_py = CircuitBreaker(redis_py.from_url(redis_server.url), "shared",
                                  failure_threshold=2)
    via_prodsafe = CircuitBreaker(prodsafe.Redis(redis_server.url), "shared",
                                  failure_threshold=2)
    via_redis_py.record_failure()
    via_prodsafe.record_failure()
    assert via_redis_py.state == via_prodsafe.state == CircuitState.OPEN


def test_ratio_mode_opens_on_the_failure_ratio_with_enough_calls(redis):
    breaker = CircuitBreaker(redis, "ratio", failure_ratio=0.5, minimum_throughput=4,
                             window_buckets=5, time_window=60)
    for _ in range(3):
        breaker.record_failure()  # 3 of 3 failed, but fewer than 4 calls
    assert breaker.can_retry()[0] is True
    breaker.record_success()  # 3 of 4: over the ratio with enough calls
    assert breaker.state == CircuitState.OPEN
    assert breaker.snapshot()["trips"] == 1


def test_durations_as_timedelta_and_seconds(redis):
    breaker = CircuitBreaker(redis, "td", time_window_minutes=datetime.timedelta(minutes=2),
                             break_duration=datetime.timedelta(seconds=5), staleness=0.5)
    assert breaker.time_window == 120.0
    assert CircuitBreaker(redis, "sec", time_window=90).time_window == 90.0
    assert CircuitBreaker(redis, "min", time_window_minutes=0.5).time_window == 30.0
    assert breaker.failure_threshold == 10 and breaker.job_type == "td"


def test_redis_going_away_never_raises_from_the_hot_path(redis_server):
    hooks = AlertHooks()
    recorder = Recorder()
    hooks.add_log_hook(recorder)
    client = prodsafe.Redis(redis_server.url, connect_timeout=0.2, command_timeout=0.2,
                            reconnect_backoff_initial=0)
    breaker = CircuitBreaker(client, "outage", failure_threshold=2, staleness=0.05,
                             subscribe=False, alert_hooks=hooks)
    breaker.record_failure()
    redis_server.kill()
    # The local view starts from the fleet's state (CLOSED) with an empty
    # window: two more failures open it.
    breaker.record_failure()
    assert breaker.can_retry()[0] is True
    breaker.record_failure()
    assert breaker.can_retry()[0] is False
    assert breaker.store_unavailable is True
    assert "circuit_store_unavailable" in recorder.events()
    with pytest.raises(prodsafe.StoreUnavailable):
        breaker.force_close()


# --- across processes ---------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys
    import prodsafe
    url, action = sys.argv[1], sys.argv[2]
    events = []
    hooks = prodsafe.AlertHooks()
    hooks.add_event_hook(lambda event_type, message, context: events.append(event_type))
    breaker = prodsafe.CircuitBreaker(prodsafe.Redis(url), "fleet", failure_threshold=5,
                                      alert_hooks=hooks)
    if action == "fail":
        for _ in range(5):
            breaker.record_failure()
        print(breaker.state.value, *events)
    else:
        allowed, reason = breaker.can_retry()
        print("allowed" if allowed else "refused: " + reason)
""")


def run_child(url, action):
    result = subprocess.run([sys.executable, "-c", CHILD, url, action], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_breaker_opening_in_one_process_refuses_calls_in_another(redis_server):
    hooks = AlertHooks()
    recorder = Recorder()
    hooks.add_log_hook(recorder)
    # This process's breaker exists (and answers CLOSED locally) before the
    # other process opens the circuit.
    here = CircuitBreaker(prodsafe.Redis(redis_server.url), "fleet", failure_threshold=5,
                          alert_hooks=hooks)
    assert here.can_retry() == (True, None)
    assert run_child(redis_server.url, "ask") == "allowed"
    assert run_child(redis_server.url, "fail") == "OPEN circuit_opened"
    # The transition arrives by pub/sub (or the staleness re-read).
    assert poll(lambda: here.can_retry()[0] is False, timeout=5)
    assert here.can_retry()[1].startswith("circuit fleet is open for")
    # The alert fired once, in the process that made the transition.
    assert recorder.calls == []
    # And a process started now is refused too.
    assert run_child(redis_server.url, "ask").startswith("refused: circuit fleet is OPEN; retry after")


# --- bad input ----------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, words", [
    ({"job_type": 42}, prodsafe.WrongType, "job_type must be a str, not int"),
    ({"job_type": ""}, prodsafe.InvalidArgument, "job type must be 1 to 256 characters"),
    ({"job_type": "a:b"}, prodsafe.InvalidArgument, "contains ':'"),
    ({"failure_threshold": 0}, prodsafe.InvalidArgument, "failure_threshold must be at least 1"),
    ({"failure_threshold": -3}, prodsafe.InvalidArgument, "failure_threshold must be at least 1"),
    ({"failure_threshold": True}, prodsafe.WrongType, "failure_threshold must be"),
    ({"failure_threshold": 2.5}, prodsafe.WrongType, "failure_threshold must be"),
    ({"time_window_minutes": 0}, prodsafe.InvalidArgument, "time_window_minutes must be more"),
    ({"time_window_minutes": "5"}, prodsafe.WrongType, "time_window_minutes must be a number"),
    ({"time_window_minutes": 5, "time_window": 60}, prodsafe.InvalidArgument, "not both"),
    ({"alert_hooks": print}, prodsafe.WrongType, "alert_hooks must be a prodsafe.AlertHooks"),
    ({"break_duration": -1}, prodsafe.InvalidArgument, "break_duration must be a finite"),
    ({"break_duration": 60, "max_break_duration": 30}, prodsafe.InvalidArgument,
     "max_break_duration must be at least break_duration"),
    ({"failure_ratio": 1.5}, prodsafe.InvalidArgument, "failure_ratio must be in [0, 1]"),
    ({"half_open_max_probes": 0}, prodsafe.InvalidArgument, "half_open_max_probes must be 1"),
    ({"subscribe": "yes"}, prodsafe.WrongType, "subscribe must be"),
    ({"frobnicate": 1}, prodsafe.InvalidArgument, "unknown option 'frobnicate'"),
])
def test_bad_arguments_raise_clear_errors(redis, kwargs, error, words):
    arguments = {"job_type": "trading", **kwargs}
    with pytest.raises(error) as caught:
        CircuitBreaker(redis, **arguments)
    assert words in str(caught.value)


def test_a_bad_connection_or_permission_is_wrong_type(redis):
    with pytest.raises(prodsafe.WrongType, match="a Redis connection must be"):
        CircuitBreaker("redis://localhost", "trading")
    with pytest.raises(prodsafe.InvalidArgument, match="needs a job_type"):
        CircuitBreaker(redis)
    breaker = CircuitBreaker(redis, "trading")
    with pytest.raises(prodsafe.WrongType, match="permission must be a prodsafe.Permission"):
        breaker.record_success("permit")
