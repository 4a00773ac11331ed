"""prodsafe.AlertHooks: Python hooks (contained when they raise, released
with the GIL), the Slack, PagerDuty and JSON webhooks against a real local
HTTP server, dead endpoints, interpreter exit, bad input."""

import contextlib
import gc
import http.server
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import pytest

import prodsafe
from prodsafe import (AlertHooks, CircuitBreaker, JsonWebhook, PagerDutyEvents, SlackWebhook,
                      WebhookDispatcher)
from _support import Recorder, poll


@contextlib.contextmanager
def unraisable_reports():
    """What sys.unraisablehook is given meanwhile, instead of printing it
    (set in the test itself: pytest sets its own hook for each phase)."""
    seen = []
    lock = threading.Lock()

    def hook(report):
        with lock:
            seen.append((report.exc_type, str(report.exc_value), report.err_msg,
                         report.object))

    previous = sys.unraisablehook
    sys.unraisablehook = hook
    try:
        yield seen
    finally:
        sys.unraisablehook = previous


class Endpoint:
    """A real HTTP server on loopback, in a thread, remembering each POST."""

    def __init__(self, status=200):
        self.requests = []
        self.lock = threading.Lock()
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with endpoint.lock:
                    endpoint.requests.append(
                        (self.path, self.headers.get("Content-Type"), json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self, path):
        with self.lock:
            return [body for p, _, body in self.requests if p == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    server = Endpoint()
    yield server
    server.close()


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- Python hooks -------------------------------------------------------------

def test_hooks_are_called_in_order_with_the_context_as_a_dict():
    hooks = AlertHooks()
    order = []
    hooks.add_log_hook(lambda *args: order.append(("log", args)))
    hooks.add_metric_hook(lambda *args: order.append(("metric", args)))
    hooks.add_event_hook(lambda *args: order.append(("event", args)))
    hooks.add_webhook_hook(lambda *args: order.append(("webhook", args)))
    hooks.fire("deploy_started", "v2 rolling out",
               {"job_type": "deploy", "failure_count": 2, "window": 60, "timestamp": 1.5e9,
                "extra": {"version": "v2"}})
    assert [kind for kind, _ in order] == ["log", "metric", "event", "webhook"]
    event_type, message, context = order[0][1]
    assert (event_type, message) == ("deploy_started", "v2 rolling out")
    assert context == {"job_type": "deploy", "state": "", "previous_state": "",
                       "failure_count": 2, "threshold": 0, "window": 60.0,
                       "timestamp": 1.5e9, "instance": "", "extra": {"version": "v2"}}
    json.dumps(context)  # JSON-friendly, for hooks that forward it
    assert hooks.fired == 1 and hooks.hook_errors == 0 and len(hooks) == 4


def test_a_raising_hook_is_contained_and_reported_through_unraisablehook(redis):
    hooks = AlertHooks()
    recorder = Recorder()

    def broken_hook(event_type, message, context):
        raise RuntimeError(f"pager down while sending {event_type}")

    hooks.add_log_hook(broken_hook)
    hooks.add_metric_hook(recorder)
    breaker = CircuitBreaker(redis, "contained", failure_threshold=2, alert_hooks=hooks)
    with unraisable_reports() as unraisable:
        breaker.record_failure()
        breaker.record_failure()  # opens: the broken hook raises; nothing reaches us
    assert breaker.can_retry()[0] is False
    assert [call[0] for call in recorder.calls] == ["circuit_opened"]  # the next hook ran
    assert len(unraisable) == 1
    exc_type, text, err_msg, obj = unraisable[0]
    assert exc_type is RuntimeError and text == "pager down while sending circuit_opened"
    assert "log hook" in str(obj) and "broken_hook" in str(obj)
    assert hooks.hook_errors == 1
    # The breaker keeps working.
    with unraisable_reports() as unraisable:
        breaker.reset()
    assert breaker.can_retry() == (True, None)
    assert [call[0] for call in recorder.calls] == ["circuit_opened", "circuit_closed"]
    assert len(unraisable) == 1 and hooks.hook_errors == 2


def test_raising_hooks_fired_from_many_threads_are_all_contained():
    hooks = AlertHooks()
    recorder = Recorder()
    hooks.add_event_hook(lambda *args: 1 / 0)
    hooks.add_event_hook(recorder)
    breakers = [CircuitBreaker(prodsafe.InMemoryBreakerStore(), f"job{i}", failure_threshold=1,
                               alert_hooks=hooks) for i in range(16)]

    def work(breaker):
        for _ in range(20):
            breaker.record_failure()  # opens (a hook raises)
            breaker.reset()           # closes (a hook raises)
            hooks.fire("custom", "from a thread")

    threads = [threading.Thread(target=work, args=(b,)) for b in breakers]
    with unraisable_reports() as unraisable:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert len(recorder.calls) == 16 * 20 * 3
    assert hooks.hook_errors == len(unraisable) == 16 * 20 * 3
    assert all(report[0] is ZeroDivisionError for report in unraisable)


def test_hook_callables_are_released_when_the_hooks_go(redis):
    class Hook:
        def __call__(self, event_type, message, context):
            pass

    hook = Hook()
    alive = weakref.ref(hook)
    hooks = AlertHooks()
    hooks.add_log_hook(hook)
    breaker = CircuitBreaker(redis, "released", alert_hooks=hooks)
    del hook
    gc.collect()
    assert alive() is not None  # the hooks hold it
    del hooks
    gc.collect()
    assert alive() is not None  # the breaker holds the hooks
    del breaker
    gc.collect()
    assert alive() is None


# --- webhooks -----------------------------------------------------------------

def test_json_slack_and_pagerduty_payloads_reach_a_real_http_server(redis, endpoint):
    dispatcher = WebhookDispatcher(timeout=5)
    hooks = AlertHooks()
    json_sink = hooks.add_json_webhook(endpoint.url + "/json", dispatcher=dispatcher)
    slack = hooks.add_slack_webhook(endpoint.url + "/slack/T0/B0/secret", dispatcher=dispatcher)
    pagerduty = PagerDutyEvents("r0utingkey", url=endpoint.url + "/pagerduty",
                                dispatcher=dispatcher)
    hooks.add_webhook_hook(pagerduty)
    assert json_sink.dispatcher is dispatcher is slack.dispatcher
    assert slack.url == endpoint.url + "/***"  # the secret path is not shown
    breaker = CircuitBreaker(redis, "webhooks", failure_threshold=2, alert_hooks=hooks)
    breaker.record_failure()
    breaker.record_failure()
    assert dispatcher.flush(10)
    assert dispatcher.delivered == 3 and dispatcher.failed == 0

    [body] = endpoint.bodies("/json")
    assert body["event_type"] == "circuit_opened"
    assert body["message"].startswith("circuit webhooks opened after 2 failures")
    context = body["context"]
    assert (context["job_type"], context["state"], context["previous_state"]) == (
        "webhooks", "OPEN", "CLOSED")
    assert (context["failure_count"], context["threshold"], context["window_ms"]) == (
        2, 2, 300_000)
    assert context["timestamp"].endswith("Z") and context["extra"] == {"trips": "1"}

    [body] = endpoint.bodies("/slack/T0/B0/secret")
    assert body["text"].startswith(":rotating_light: *[prodsafe] circuit_opened* `webhooks`")
    assert "CLOSED → OPEN" in body["text"]

    [body] = endpoint.bodies("/pagerduty")
    assert body["routing_key"] == "r0utingkey"
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == "prodsafe-circuit-webhooks"
    assert body["payload"]["severity"] == "critical"
    assert body["payload"]["custom_details"]["failure_count"] == 2
    assert all(ctype == "application/json" for _, ctype, _ in endpoint.requests)

    # Closing resolves the PagerDuty incident.
    breaker.reset()
    assert dispatcher.flush(10)
    assert [b["event_action"] for b in endpoint.bodies("/pagerduty")] == ["trigger", "resolve"]
    assert len(endpoint.bodies("/json")) == 2


def test_a_sink_formats_without_sending():
    sink = JsonWebhook("http://127.0.0.1:9/hook")
    request = sink.format("circuit_closed", "ok", {"job_type": "x"})
    assert request["url"] == "http://127.0.0.1:9/hook" and request["sink"] == "json"
    assert json.loads(request["body"])["context"]["job_type"] == "x"
    assert PagerDutyEvents("key").format("circuit_half_open", "probing") is None
    assert repr(SlackWebhook("https://hooks.slack.com/services/T/B/X")) == \
        "SlackWebhook('https://hooks.slack.com/***')"


def test_a_webhook_to_a_closed_port_does_not_block_or_break_record_failure(redis):
    dispatcher = WebhookDispatcher(max_attempts=2, retry_delay=0.05, timeout=1)
    hooks = AlertHooks()
    recorder = Recorder()
    hooks.add_json_webhook(f"http://127.0.0.1:{closed_port()}/hook", dispatcher=dispatcher)
    hooks.add_log_hook(recorder)
    breaker = CircuitBreaker(redis, "dead-endpoint", failure_threshold=1, alert_hooks=hooks)
    started = time.monotonic()
    breaker.record_failure()
    assert time.monotonic() - started < 0.5
    assert breaker.can_retry()[0] is False
    assert [call[0] for call in recorder.calls] == ["circuit_opened"]
    assert poll(lambda: dispatcher.failed == 1)
    assert dispatcher.retried == 1 and dispatcher.delivered == 0
    assert hooks.hook_errors == 0


def test_a_webhook_that_never_answers_does_not_block_record_failure(redis):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        dispatcher = WebhookDispatcher(max_attempts=1, timeout=3, drain_timeout=0)
        hooks = AlertHooks()
        hooks.add_slack_webhook(url, dispatcher=dispatcher)
        breaker = CircuitBreaker(redis, "silent", failure_threshold=1, alert_hooks=hooks)
        started = time.monotonic()
        breaker.record_failure()
        breaker.reset()
        breaker.record_failure()
        assert time.monotonic() - started < 1.0
        assert breaker.can_retry()[0] is False
        assert poll(lambda: dispatcher.pending >= 1, timeout=2)
        del breaker, hooks
        started = time.monotonic()
        del dispatcher  # drain_timeout 0: the attempt in flight is cut off
        gc.collect()
        assert time.monotonic() - started < 2.0


# --- interpreter exit ---------------------------------------------------------

EXIT_SCRIPT = textwrap.dedent("""
    import socket, sys, threading
    import prodsafe

    url = sys.argv[1]
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed = probe.getsockname()[1]
    probe.close()

    def raising(event_type, message, context):
        raise ValueError("hook raised at exit")

    hooks = prodsafe.AlertHooks()
    hooks.add_log_hook(lambda event_type, message, context: None)
    hooks.add_event_hook(raising)
    hooks.add_json_webhook(f"http://127.0.0.1:{closed}/hook")
    hooks.add_slack_webhook(f"http://127.0.0.1:{silent.getsockname()[1]}/slack")
    breaker = prodsafe.CircuitBreaker(prodsafe.Redis(url), "exit", failure_threshold=1,
                                      alert_hooks=hooks)
    memory = prodsafe.CircuitBreaker(prodsafe.InMemoryBreakerStore(), "exit",
                                     failure_threshold=1, alert_hooks=hooks)
    if sys.argv[2] == "cycle":
        # A cycle through C++ (hooks -> hook -> breaker -> hooks) that no
        # collector can see: these live until the process is gone. Without
        # it, they are destroyed while the interpreter finalizes.
        hooks.add_metric_hook(lambda event_type, message, context: (breaker, memory))
    breaker.record_failure()
    memory.record_failure()

    def churn():
        while True:
            memory.reset()
            memory.record_failure()
            breaker.can_retry()

    for _ in range(2):
        threading.Thread(target=churn, daemon=True).start()
    print("exiting", flush=True)
""")


@pytest.mark.parametrize("cycle", ["cycle", "no-cycle"])
def test_the_interpreter_exits_cleanly_with_breakers_and_dispatchers_alive(redis_server, cycle):
    # Daemon threads are inside the breaker (GIL released) and in hooks when
    # the interpreter exits: each run used to abort (terminate called without
    # an active exception) before gil_release and the atexit drain.
    for _ in range(3):
        result = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, redis_server.url, cycle],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout == "exiting\n"
        assert "Fatal Python error" not in result.stderr


# --- bad input ----------------------------------------------------------------

def test_bad_hooks_and_sinks_raise_clear_errors():
    hooks = AlertHooks()
    with pytest.raises(prodsafe.WrongType, match="log hook must be callable"):
        hooks.add_log_hook(42)
    with pytest.raises(prodsafe.WrongType, match="metric hook must be callable"):
        hooks.add_metric_hook("print")
    with pytest.raises(prodsafe.WrongType, match="event hook must be callable"):
        hooks.add_event_hook(None)
    with pytest.raises(prodsafe.WrongType, match="webhook hook must be callable"):
        hooks.add_webhook_hook("https://hooks.slack.com/services/T/B/X")
    assert len(hooks) == 0
    with pytest.raises(prodsafe.WrongType, match="url must be a str, not int"):
        SlackWebhook(42)
    with pytest.raises(prodsafe.InvalidArgument, match="only http:// and https://"):
        hooks.add_slack_webhook("ftp://hooks.example.com/x")
    with pytest.raises(prodsafe.InvalidArgument) as caught:
        JsonWebhook("https://user:hunter2@example.com/hook")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(prodsafe.InvalidArgument, match="routing key is empty"):
        PagerDutyEvents("")
    with pytest.raises(prodsafe.WrongType, match="dispatcher must be a prodsafe.WebhookDispatcher"):
        JsonWebhook("http://127.0.0.1:9/", dispatcher="shared")
    with pytest.raises(prodsafe.InvalidArgument, match="queue_capacity must be at least 1"):
        WebhookDispatcher(queue_capacity=0)
    with pytest.raises(prodsafe.InvalidArgument, match="unknown option 'retries'"):
        WebhookDispatcher(retries=3)
    with pytest.raises(prodsafe.InvalidArgument, match="timeout must be a finite"):
        WebhookDispatcher(timeout=-1)
    with pytest.raises(prodsafe.InvalidArgument, match="unknown context key 'order_id'"):
        hooks.fire("x", "y", {"order_id": "1"})
    with pytest.raises(prodsafe.WrongType, match=r'context\["failure_count"\] must be'):
        hooks.fire("x", "y", {"failure_count": "3"})
    with pytest.raises(prodsafe.WrongType, match="context must be a dict or None"):
        hooks.fire("x", "y", ["job_type"])
    with pytest.raises(prodsafe.WrongType, match="event_type must be a str"):
        hooks.fire(1, "y")
    assert hooks.fired == 0


def test_a_hook_may_call_the_breaker_back(redis):
    hooks = AlertHooks()
    seen = []
    breaker = None

    def inspecting_hook(event_type, message, context):
        # A round trip from inside the hook (the GIL is dropped again there).
        seen.append((event_type, breaker.state, breaker.snapshot()["trips"]))

    hooks.add_log_hook(inspecting_hook)
    breaker = CircuitBreaker(redis, "reentrant", failure_threshold=1, alert_hooks=hooks)
    breaker.record_failure()
    breaker.reset()
    assert seen == [("circuit_opened", "OPEN", 1), ("circuit_closed", "CLOSED", 0)]
    assert hooks.hook_errors == 0


def test_alerts_reach_the_fleets_history_in_redis(redis):
    hooks = prodsafe.AlertHooks()
    stream = hooks.add_redis_stream(redis, max_entries=100)
    assert stream.key == "alerts:recent"
    hooks.fire("retry_spike", "retry spike: 12 retries", {"job_type": "settlement",
                                                          "extra": {"count": "12"}})
    hooks.fire(prodsafe.RETRY_ANOMALY, "job-7 took 14 attempts", {"job_type": "settlement"})
    assert stream.flush(5)
    assert stream.stats()["written"] == 2
    newest, oldest = prodsafe.read_recent_alerts(redis, 10)
    assert newest["event_type"] == "retry_anomaly"
    assert oldest["event_type"] == "retry_spike" and oldest["message"] == "retry spike: 12 retries"
    assert oldest["context"]["job_type"] == "settlement"
    assert oldest["context"]["extra"] == {"count": "12"}
    assert oldest["context"]["instance"].endswith(f":{os.getpid()}")
    # Something else at the key: counted, never raised into the caller.
    redis.execute_command("DEL", "alerts:recent")
    redis.execute_command("SET", "alerts:recent", "not a stream")
    hooks.fire("retry_spike", "again")
    stream.flush(5)
    assert stream.stats()["dropped_redis_error"] == 1
    with pytest.raises(prodsafe.DecodeError, match="alerts:recent"):
        prodsafe.read_recent_alerts(redis)
