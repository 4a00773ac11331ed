// prodsafe.alerts: AlertHooks taking Python callables, and the Slack,
// PagerDuty and JSON webhook sinks with their WebhookDispatcher
// (alerts/alert_hooks.hpp, alerts/webhook.hpp; docs/python.md).
//
// A Python hook is stored in a PyHook: its callable is released with the GIL
// held (whichever thread drops the last copy of the C++ hook list), and it is
// called through call_contained(), so a hook that raises is reported through
// sys.unraisablehook and counted in hook_errors(), never propagated to the
// code that fired the alert (record_failure()).
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <utility>

#include "bindings.hpp"
#include "prodsafe/alerts/alert_hooks.hpp"
#include "prodsafe/alerts/recent_alerts.hpp"
#include "prodsafe/alerts/redis_alert_stream.hpp"
#include "prodsafe/alerts/webhook.hpp"
#include "prodsafe/alerts/webhook_dispatcher.hpp"

namespace prodsafe::python {

namespace {

using alerts::AlertContext;
using alerts::AlertHooks;
using alerts::WebhookDispatcher;
using alerts::WebhookOptions;
using alerts::WebhookSink;

// Hooks run from C++ code that must not unwind (AlertHooks::fire(),
// record_failure(): noexcept). A thread other than the main one that waits
// for the GIL once the interpreter is finalizing is ended by Python
// (pthread_exit), which unwinds through those frames and aborts the process.
// So at exit (atexit, before finalization starts) no new Python hook call
// begins, and those under way are waited for (up to kExitDrain) without the
// GIL; from then on nothing here takes the GIL from another thread.
std::atomic<bool> closing{false};
std::atomic<int> hooks_running{0};
std::mutex running_mutex;
std::condition_variable running_done;
constexpr auto kExitDrain = std::chrono::seconds(2);

// Counts a Python hook call under way; entered() is false once closing.
class HookCall {
 public:
  HookCall() {
    hooks_running.fetch_add(1);
    entered_ = !closing.load();
    if (!entered_) leave();
  }
  ~HookCall() {
    if (entered_) leave();
  }
  HookCall(const HookCall&) = delete;
  HookCall& operator=(const HookCall&) = delete;
  [[nodiscard]] bool entered() const noexcept { return entered_; }

 private:
  static void leave() {
    if (hooks_running.fetch_sub(1) == 1) {
      std::lock_guard lock(running_mutex);
      running_done.notify_all();
    }
  }
  bool entered_ = false;
};

void close_hooks_at_exit() {
  closing.store(true);
  gil_release release;
  std::unique_lock lock(running_mutex);
  running_done.wait_for(lock, kExitDrain, [] { return hooks_running.load() == 0; });
}

bool python_alive() { return Py_IsInitialized() != 0 && _Py_IsFinalizing() == 0; }

// A Python callable kept by C++: released with the GIL (any thread may drop
// the last reference), or leaked once the interpreter is finalizing.
struct PyHook {
  py::object fn;
  std::string where;  // for sys.unraisablehook: which hook raised

  PyHook(py::object callable, std::string description)
      : fn(std::move(callable)), where(std::move(description)) {}
  PyHook(const PyHook&) = delete;
  PyHook& operator=(const PyHook&) = delete;
  ~PyHook() {
    if (python_alive() && PyGILState_Check() != 0) {
      fn = py::object();
    } else if (interpreter_closing()) {
      static_cast<void>(fn.release());  // taking the GIL now could end this thread
    } else {
      py::gil_scoped_acquire gil;
      fn = py::object();
    }
  }
};

double unix_seconds(std::chrono::system_clock::time_point time) {
  return std::chrono::duration<double>(time.time_since_epoch()).count();
}

// The context as the hooks get it: a dict of JSON-friendly values.
py::dict context_dict(const AlertContext& context) {
  py::dict out;
  out["job_type"] = utf8_text(context.job_type);
  out["state"] = utf8_text(context.state);
  out["previous_state"] = utf8_text(context.previous_state);
  out["failure_count"] = context.failure_count;
  out["threshold"] = context.threshold;
  out["window"] = static_cast<double>(context.window.count()) / 1000.0;
  out["timestamp"] = context.timestamp == std::chrono::system_clock::time_point{}
                         ? py::object(py::none())
                         : py::object(py::float_(unix_seconds(context.timestamp)));
  out["instance"] = utf8_text(context.instance);
  py::dict extra;
  for (const auto& [key, value] : context.extra) extra[utf8_text(key)] = utf8_text(value);
  out["extra"] = extra;
  return out;
}

std::uint64_t count_arg(py::handle value, std::string_view what) {
  const long long number = int_arg(value, what);
  if (number < 0) raise_python(InvalidArgument(std::string(what) + " must be >= 0"));
  return static_cast<std::uint64_t>(number);
}

// A context from Python (AlertHooks.fire, WebhookSink.format/send): the keys
// context_dict() gives, each optional.
AlertContext context_arg(py::handle value) {
  AlertContext context;
  if (value.is_none()) return context;
  if (!py::isinstance<py::dict>(value)) raise_wrong_type("context", "a dict or None", value);
  for (const auto& [key, item] : value.cast<py::dict>()) {
    const std::string name = str_arg(key, "a context key");
    const std::string what = "context[\"" + name + "\"]";
    if (name == "job_type") {
      context.job_type = str_arg(item, what);
    } else if (name == "state") {
      context.state = str_arg(item, what);
    } else if (name == "previous_state") {
      context.previous_state = str_arg(item, what);
    } else if (name == "failure_count") {
      context.failure_count = count_arg(item, what);
    } else if (name == "threshold") {
      context.threshold = count_arg(item, what);
    } else if (name == "window") {
      context.window = duration_arg(item, what);
    } else if (name == "timestamp") {
      if (item.is_none()) continue;
      const double seconds = float_arg(item, what);
      if (!std::isfinite(seconds) || std::abs(seconds) > 1e11)
        raise_python(InvalidArgument(what + " must be a finite Unix time in seconds"));
      context.timestamp = std::chrono::system_clock::time_point(
          std::chrono::duration_cast<std::chrono::system_clock::duration>(
              std::chrono::duration<double>(seconds)));
    } else if (name == "instance") {
      context.instance = str_arg(item, what);
    } else if (name == "extra") {
      if (!py::isinstance<py::dict>(item)) raise_wrong_type(what, "a dict of str to str", item);
      for (const auto& [extra_key, extra_value] : item.cast<py::dict>()) {
        const std::string extra_name = str_arg(extra_key, "a context[\"extra\"] key");
        context.extra[extra_name] =
            str_arg(extra_value, "context[\"extra\"][\"" + extra_name + "\"]");
      }
    } else {
      raise_python(InvalidArgument("unknown context key '" + name +
                                   "'; the keys are job_type, state, previous_state, "
                                   "failure_count, threshold, window, timestamp, instance, extra "
                                   "(put anything else in extra)"));
    }
  }
  return context;
}

// The C++ hook that calls a Python callable: with the GIL, contained. A hook
// that raised is reported through sys.unraisablehook by call_contained(),
// then counted by AlertHooks::fire() (hook_errors()) through the exception
// thrown here, which never leaves fire().
alerts::AlertHook python_hook(py::handle fn, std::string_view kind) {
  if (!PyCallable_Check(fn.ptr()))
    raise_wrong_type(std::string(kind) + " hook", "callable (event_type, message, context)", fn);
  const std::string description =
      "prodsafe.AlertHooks " + std::string(kind) + " hook " + py::repr(fn).cast<std::string>();
  auto hook = std::make_shared<PyHook>(py::reinterpret_borrow<py::object>(fn), description);
  return
      [hook](std::string_view event_type, std::string_view message, const AlertContext& context) {
        const HookCall call;
        if (!call.entered() || !python_alive()) return;
        bool called = false;
        {
          py::gil_scoped_acquire gil;
          py::object args[3];
          try {
            args[0] = utf8_text(event_type);
            args[1] = utf8_text(message);
            args[2] = context_dict(context);
          } catch (py::error_already_set& error) {
            error.discard_as_unraisable(hook->where.c_str());
            throw std::runtime_error("could not build the alert's arguments for a Python hook");
          }
          called = call_contained(hook->fn, hook->where + " on '" + std::string(event_type) + "'",
                                  args[0], args[1], args[2]);
        }
        if (!called && !interpreter_closing()) {
          throw std::runtime_error("the Python hook raised (reported through sys.unraisablehook)");
        }
      };
}

// A webhook sink together with its dispatcher, so that Python can reach the
// dispatcher (sink.dispatcher) and share it with other sinks.
struct PySink {
  std::shared_ptr<WebhookSink> sink;
  std::shared_ptr<WebhookDispatcher> dispatcher;
  virtual ~PySink() = default;
};
struct PySlack : PySink {};
struct PyPagerDuty : PySink {};
struct PyJson : PySink {};

std::shared_ptr<WebhookDispatcher> dispatcher_arg(py::handle value) {
  if (value.is_none()) return released_on_delete(std::make_unique<WebhookDispatcher>());
  if (!py::isinstance<WebhookDispatcher>(value))
    raise_wrong_type("dispatcher", "a prodsafe.WebhookDispatcher or None", value);
  return value.cast<std::shared_ptr<WebhookDispatcher>>();
}

template <class Handle, class Sink, class... Args>
std::shared_ptr<Handle> make_sink(py::handle dispatcher, Args&&... args) {
  auto handle = std::make_shared<Handle>();
  handle->dispatcher = dispatcher_arg(dispatcher);
  // The dispatcher may be released without the GIL from here on: the sink
  // only enqueues.
  handle->sink = std::make_shared<Sink>(std::forward<Args>(args)..., handle->dispatcher);
  return handle;
}

std::shared_ptr<PySlack> make_slack(py::handle url, py::handle dispatcher) {
  return make_sink<PySlack, alerts::SlackWebhook>(dispatcher, str_arg(url, "url"));
}
std::shared_ptr<PyPagerDuty> make_pagerduty(py::handle routing_key, py::handle url,
                                            py::handle dispatcher) {
  return make_sink<PyPagerDuty, alerts::PagerDutyEvents>(
      dispatcher, str_arg(routing_key, "routing_key"), str_arg(url, "url"));
}
std::shared_ptr<PyJson> make_json(py::handle url, py::handle dispatcher) {
  return make_sink<PyJson, alerts::JsonWebhook>(dispatcher, str_arg(url, "url"));
}

WebhookOptions webhook_options(const py::kwargs& kwargs) {
  WebhookOptions options;
  for (const auto& [key, value] : kwargs) {
    const std::string name = str_arg(key, "a keyword name");
    if (name == "queue_capacity") {
      const long long capacity = int_arg(value, name);
      if (capacity < 1) raise_python(InvalidArgument("queue_capacity must be at least 1"));
      options.queue_capacity = static_cast<std::size_t>(capacity);
    } else if (name == "timeout") {
      options.timeout = duration_arg(value, name);
    } else if (name == "max_attempts") {
      const long long attempts = int_arg(value, name);
      if (attempts < 1 || attempts > 1000)
        raise_python(InvalidArgument("max_attempts must be 1 to 1000"));
      options.max_attempts = static_cast<int>(attempts);
    } else if (name == "retry_delay") {
      options.retry_delay = duration_arg(value, name);
    } else if (name == "max_retry_after") {
      options.max_retry_after = duration_arg(value, name);
    } else if (name == "drain_timeout") {
      options.drain_timeout = duration_arg(value, name);
    } else if (name == "ca_cert_path") {
      options.ca_cert_path = str_arg(value, name);
    } else {
      raise_python(InvalidArgument(
          "unknown option '" + name +
          "' for prodsafe.WebhookDispatcher; the options are queue_capacity, timeout, "
          "max_attempts, retry_delay, max_retry_after, drain_timeout, ca_cert_path"));
    }
  }
  return options;
}

py::object request_dict(const std::optional<alerts::WebhookRequest>& request) {
  if (!request) return py::none();
  py::dict out;
  out["url"] = utf8_text(request->url);
  out["body"] = utf8_text(request->body);
  out["content_type"] = utf8_text(request->content_type);
  out["sink"] = utf8_text(request->sink);
  return out;
}

void add_python(AlertHooks& hooks, py::handle fn, std::string_view kind,
                void (AlertHooks::*add)(alerts::AlertHook)) {
  (hooks.*add)(python_hook(fn, kind));
}

}  // namespace

bool interpreter_closing() noexcept { return closing.load() || !python_alive(); }

void bind_alerts(py::module_& m) {
  py::module_::import("atexit").attr("register")(py::cpp_function(&close_hooks_at_exit));
  m.attr("CIRCUIT_OPENED") = std::string(alerts::kCircuitOpened);
  m.attr("CIRCUIT_HALF_OPEN") = std::string(alerts::kCircuitHalfOpen);
  m.attr("CIRCUIT_CLOSED") = std::string(alerts::kCircuitClosed);
  m.attr("CIRCUIT_DISABLED") = std::string(alerts::kCircuitDisabled);
  m.attr("CIRCUIT_STORE_UNAVAILABLE") = std::string(alerts::kCircuitStoreUnavailable);
  m.attr("CIRCUIT_STORE_AVAILABLE") = std::string(alerts::kCircuitStoreAvailable);
  m.attr("RETRY_SPIKE") = std::string(alerts::kRetrySpike);
  m.attr("RETRY_ANOMALY") = std::string(alerts::kRetryAnomaly);
  m.attr("PAGERDUTY_EVENTS_URL") = std::string(alerts::kPagerDutyEventsUrl);

  py::class_<WebhookDispatcher, std::shared_ptr<WebhookDispatcher>>(m, "WebhookDispatcher", R"doc(
Delivers webhook POSTs off the caller's thread: a bounded queue and one
thread. Share one among several sinks (dispatcher=...).

    WebhookDispatcher(queue_capacity=1000, timeout=5, max_attempts=3,
                      retry_delay=0.2, max_retry_after=60, drain_timeout=2,
                      ca_cert_path="")

Durations in seconds or datetime.timedelta. A full queue drops the request
(counted in dropped); connection errors, timeouts, 5xx and 429 are retried
with a doubling delay. When the dispatcher goes, it waits up to
drain_timeout for its queue, then drops what is left.
)doc")
      .def(py::init([](const py::kwargs& kwargs) {
        WebhookOptions options = webhook_options(kwargs);
        return released_on_delete(std::make_unique<WebhookDispatcher>(std::move(options)));
      }))
      .def(
          "flush",
          [](WebhookDispatcher& dispatcher, py::handle timeout) {
            const auto wait = duration_arg(timeout, "timeout");
            gil_release release;
            return dispatcher.flush(wait);
          },
          py::arg("timeout") = 5.0,
          "Waits until every queued request was delivered or failed, or `timeout`\n"
          "seconds pass; True when nothing is left to do.")
      .def_property_readonly("delivered", &WebhookDispatcher::delivered,
                             "Requests answered with 2xx.")
      .def_property_readonly(
          "failed", &WebhookDispatcher::failed,
          "Requests given up on (attempts exhausted, a final answer, a bad URL).")
      .def_property_readonly("dropped", &WebhookDispatcher::dropped,
                             "Requests never attempted (queue full, or left at shutdown).")
      .def_property_readonly("retried", &WebhookDispatcher::retried,
                             "Attempts repeated after a retryable failure.")
      .def_property_readonly("pending", &WebhookDispatcher::pending,
                             "Requests queued or in flight.");

  py::class_<PySink, std::shared_ptr<PySink>>(m, "WebhookSink", R"doc(
A webhook (SlackWebhook, PagerDutyEvents, JsonWebhook): formats an alert as
an HTTP POST and enqueues it on its dispatcher. Add it with
AlertHooks.add_webhook_hook(sink).
)doc")
      .def(
          "format",
          [](const PySink& self, py::handle event_type, py::handle message, py::handle context) {
            const std::string type = str_arg(event_type, "event_type");
            const std::string text_ = str_arg(message, "message");
            const AlertContext alert = context_arg(context);
            return request_dict(self.sink->format(type, text_, alert));
          },
          py::arg("event_type"), py::arg("message"), py::arg("context") = py::none(),
          "The POST this sink would send, as a dict of url, body, content_type and\n"
          "sink; None when it ignores the event.")
      .def(
          "send",
          [](const PySink& self, py::handle event_type, py::handle message, py::handle context) {
            const std::string type = str_arg(event_type, "event_type");
            const std::string text_ = str_arg(message, "message");
            const AlertContext alert = context_arg(context);
            gil_release release;
            return self.sink->send(type, text_, alert);
          },
          py::arg("event_type"), py::arg("message"), py::arg("context") = py::none(),
          "Formats the alert and enqueues it; never blocks. False when the event is\n"
          "ignored or the request dropped.")
      .def_property_readonly(
          "url", [](const PySink& self) { return self.sink->redacted_url(); },
          "The URL, its path and query replaced by /*** (they carry the secret).")
      .def_readonly("dispatcher", &PySink::dispatcher, "The WebhookDispatcher delivering it.")
      .def("__repr__", [](const py::object& self) {
        return py::str(py::type::handle_of(self).attr("__name__")).cast<std::string>() + "('" +
               self.cast<const PySink&>().sink->redacted_url() + "')";
      });

  py::class_<PySlack, PySink, std::shared_ptr<PySlack>>(m, "SlackWebhook", R"doc(
A Slack incoming webhook: {"text": ...}, a summary line and one line per
context field.

    SlackWebhook(url, dispatcher=None)

dispatcher: a WebhookDispatcher to share; None makes one for this sink.
)doc")
      .def(py::init(&make_slack), py::arg("url"), py::arg("dispatcher") = py::none());

  py::class_<PyPagerDuty, PySink, std::shared_ptr<PyPagerDuty>>(m, "PagerDutyEvents", R"doc(
PagerDuty Events API v2: circuit_opened triggers an incident that
circuit_closed resolves (dedup_key "prodsafe-circuit-<job_type>");
circuit_store_unavailable / circuit_store_available likewise; other events
are ignored. The routing key is never logged.

    PagerDutyEvents(routing_key, url=PAGERDUTY_EVENTS_URL, dispatcher=None)
)doc")
      .def(py::init(&make_pagerduty), py::arg("routing_key"),
           py::arg("url") = std::string(alerts::kPagerDutyEventsUrl),
           py::arg("dispatcher") = py::none());

  py::class_<PyJson, PySink, std::shared_ptr<PyJson>>(m, "JsonWebhook", R"doc(
Any endpoint that takes JSON: {"event_type", "message", "context": {job_type,
state, previous_state, failure_count, threshold, window_ms, timestamp (ISO
8601 UTC), instance, extra}}.

    JsonWebhook(url, dispatcher=None)
)doc")
      .def(py::init(&make_json), py::arg("url"), py::arg("dispatcher") = py::none());

  py::class_<alerts::RedisAlertStream, std::shared_ptr<alerts::RedisAlertStream>>(
      m, "RedisAlertStream", R"doc(
The fleet's alert history writer (AlertHooks.add_redis_stream() makes one):
alerts queued in memory and appended by its own thread to the capped Redis
stream alerts:recent. What cannot be written is dropped and counted, never
retried.
)doc")
      .def(
          "flush",
          [](alerts::RedisAlertStream& stream, py::handle timeout) {
            const auto wait = duration_arg(timeout, "timeout");
            gil_release release;
            return stream.flush(wait);
          },
          py::arg("timeout") = 1.0,
          "Waits until what was queued is written (True) or `timeout` passes (False).")
      .def(
          "stats",
          [](const alerts::RedisAlertStream& stream) {
            const alerts::AlertStreamStats stats = stream.stats();
            py::dict out;
            out["written"] = stats.written;
            out["dropped_queue_full"] = stats.dropped_queue_full;
            out["dropped_redis_error"] = stats.dropped_redis_error;
            out["dropped_shutdown"] = stats.dropped_shutdown;
            out["dropped_forked_child"] = stats.dropped_forked_child;
            return out;
          },
          "Alerts written and dropped (by reason).")
      .def_property_readonly("key", &alerts::RedisAlertStream::key, "The stream's key.");

  m.def(
      "read_recent_alerts",
      [](py::handle redis, std::size_t count) {
        auto client = client_arg(redis);
        std::vector<alerts::StoredAlert> read;
        {
          gil_release release;
          read = alerts::read_recent_alerts(*client, count);
        }
        py::list out;
        for (const alerts::StoredAlert& alert : read) {
          py::dict item;
          item["id"] = alert.id;
          if (alert.damaged()) {
            item["damage"] = utf8_text(alert.damage);
          } else {
            item["event_type"] = utf8_text(alert.event_type);
            item["message"] = utf8_text(alert.message);
            item["context"] = context_dict(alert.context);
          }
          out.append(item);
        }
        return out;
      },
      py::arg("redis"), py::arg("count") = 50,
      "The fleet's newest alerts first (from alerts:recent), each a dict:\n"
      "id, event_type, message, context (as a hook gets it); a damaged entry has\n"
      "id and damage instead.");

  py::class_<AlertHooks, std::shared_ptr<AlertHooks>>(m, "AlertHooks", R"doc(
Functions called when something an operator should know happens, e.g. a
circuit breaker opening fleet-wide (the seed's AlertHooks).

    hooks = AlertHooks()
    hooks.add_log_hook(lambda event_type, message, context: print(message))
    hooks.add_slack_webhook("https://hooks.slack.com/services/...")

Each hook is called as hook(event_type, message, context), context a dict:
job_type, state, previous_state, failure_count, threshold, window (seconds),
timestamp (Unix seconds), instance ("host:pid") and extra (a dict of str).
Hooks are called in the order added, with the GIL, on the thread that fires
(the one calling record_failure(), ...). A hook that raises is reported
through sys.unraisablehook and counted in hook_errors; it never reaches the
caller and never stops the other hooks. Webhook sinks only enqueue: a slow
or dead endpoint never blocks the caller. Once the interpreter exits
(atexit), Python hooks are no longer called (those under way are waited
for, up to 2 s); webhook sinks still are.
)doc")
      .def(py::init([] { return released_on_delete(std::make_unique<AlertHooks>()); }))
      .def(
          "add_log_hook",
          [](AlertHooks& hooks, py::handle hook) {
            add_python(hooks, hook, "log", &AlertHooks::add_log_hook);
          },
          py::arg("hook"))
      .def(
          "add_metric_hook",
          [](AlertHooks& hooks, py::handle hook) {
            add_python(hooks, hook, "metric", &AlertHooks::add_metric_hook);
          },
          py::arg("hook"))
      .def(
          "add_event_hook",
          [](AlertHooks& hooks, py::handle hook) {
            add_python(hooks, hook, "event", &AlertHooks::add_event_hook);
          },
          py::arg("hook"))
      .def(
          "add_webhook_hook",
          [](AlertHooks& hooks, py::handle hook) {
            if (py::isinstance<PySink>(hook)) {
              hooks.add_webhook_hook(hook.cast<const PySink&>().sink);
              return;
            }
            hooks.add_webhook_hook(python_hook(hook, "webhook"));
          },
          py::arg("hook"),
          "A callable (called like the others, for your own HTTP client), or a\n"
          "WebhookSink (SlackWebhook, PagerDutyEvents, JsonWebhook), delivered off\n"
          "the caller's thread.")
      .def(
          "add_slack_webhook",
          [](AlertHooks& hooks, py::handle url, py::handle dispatcher) {
            auto sink = make_slack(url, dispatcher);
            hooks.add_webhook_hook(sink->sink);
            return sink;
          },
          py::arg("url"), py::arg("dispatcher") = py::none(),
          "Adds a SlackWebhook(url, dispatcher) and returns it.")
      .def(
          "add_pagerduty_events",
          [](AlertHooks& hooks, py::handle routing_key, py::handle url, py::handle dispatcher) {
            auto sink = make_pagerduty(routing_key, url, dispatcher);
            hooks.add_webhook_hook(sink->sink);
            return sink;
          },
          py::arg("routing_key"), py::arg("url") = std::string(alerts::kPagerDutyEventsUrl),
          py::arg("dispatcher") = py::none(),
          "Adds a PagerDutyEvents(routing_key, url, dispatcher) and returns it.")
      .def(
          "add_json_webhook",
          [](AlertHooks& hooks, py::handle url, py::handle dispatcher) {
            auto sink = make_json(url, dispatcher);
            hooks.add_webhook_hook(sink->sink);
            return sink;
          },
          py::arg("url"), py::arg("dispatcher") = py::none(),
          "Adds a JsonWebhook(url, dispatcher) and returns it.")
      .def(
          "fire",
          [](AlertHooks& hooks, py::handle event_type, py::handle message, py::handle context) {
            const std::string type = str_arg(event_type, "event_type");
            const std::string text_ = str_arg(message, "message");
            const AlertContext alert = context_arg(context);
            gil_release release;
            hooks.fire(type, text_, alert);
          },
          py::arg("event_type"), py::arg("message"), py::arg("context") = py::none(),
          "Calls every hook, as the breaker does (to test your hooks); never raises\n"
          "what a hook raises.")
      .def(
          "add_redis_stream",
          [](AlertHooks& hooks, py::handle redis, std::size_t max_entries) {
            auto client = client_arg(redis);
            std::shared_ptr<alerts::RedisAlertStream> stream;
            {
              gil_release release;
              stream = released_on_delete(std::make_unique<alerts::RedisAlertStream>(
                  client, alerts::RedisAlertStreamOptions{.max_entries = max_entries}));
            }
            hooks.add_event_hook(stream->hook());
            return stream;
          },
          py::arg("redis"), py::arg("max_entries") = 1000,
          "Adds a RedisAlertStream: every alert is also appended, off the caller's\n"
          "thread, to the capped Redis stream alerts:recent that the whole fleet\n"
          "shares (`prodsafe dashboard` shows it; read_recent_alerts() reads it).\n"
          "Returns the stream.")
      .def_property_readonly("fired", &AlertHooks::fired, "Alerts fired.")
      .def_property_readonly("hook_errors", &AlertHooks::hook_errors,
                             "Hook calls that raised (each reported through sys.unraisablehook).")
      .def("__len__", &AlertHooks::size);
}

}  // namespace prodsafe::python
