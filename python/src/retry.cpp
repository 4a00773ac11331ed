// prodsafe.retry: retry hardening (include/prodsafe/retry/): the seed's
// RetryWindowTracker, RetryHistogram, RetryAnomalyDetector and
// RetrySpikeDetector, the retry budget, and the executor, retry(fn, policy).
//
// retry() runs the C++ loop (retry::run_if) with the GIL released: fn, the
// policy's callables and hooks are called with the GIL taken back for each
// call, and the backoff sleeps happen without it (waking every 50 ms to run
// Python's signal handlers, so that Ctrl-C ends a long backoff). What fn raises is caught
// with the GIL held, judged retryable or not there (see RetryPolicy), and
// carried through the C++ loop as a PythonFailure; when retrying ends, the
// original Python exception is raised again, unchanged.
#include <cmath>
#include <functional>
#include <stdexcept>
#include <utility>

#include "bindings.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/retry/anomaly_detector.hpp"
#include "prodsafe/retry/executor.hpp"
#include "prodsafe/retry/fleet_histogram.hpp"
#include "prodsafe/retry/histogram.hpp"
#include "prodsafe/retry/in_memory_window_store.hpp"
#include "prodsafe/retry/redis_window_store.hpp"
#include "prodsafe/retry/retry_budget.hpp"
#include "prodsafe/retry/retry_window_tracker.hpp"
#include "prodsafe/retry/spike_detector.hpp"

namespace prodsafe::python {
namespace {

using std::chrono::milliseconds;
using SystemTime = std::chrono::system_clock::time_point;

// A Python object that C++ may destroy without the GIL.
struct PyRef {
  py::object object;
  explicit PyRef(py::object held) : object(std::move(held)) {}
  PyRef(const PyRef&) = delete;
  PyRef& operator=(const PyRef&) = delete;
  ~PyRef() {
    if (Py_IsInitialized() == 0 || _Py_IsFinalizing() != 0) {
      static_cast<void>(object.release());  // leaked: the interpreter is going away
      return;
    }
    py::gil_scoped_acquire gil;
    object = py::object();
  }
};

// fn's exception on its way through the C++ loop, judged with the GIL held.
class PythonFailure : public std::exception {
 public:
  PythonFailure(py::error_already_set error, bool retryable, std::optional<milliseconds> hint,
                std::string message)
      : error_(std::move(error)),
        retryable_(retryable),
        hint_(hint),
        message_(std::move(message)) {}
  [[nodiscard]] const char* what() const noexcept override { return message_.c_str(); }
  [[nodiscard]] bool retryable() const noexcept { return retryable_; }
  [[nodiscard]] std::optional<milliseconds> hint() const noexcept { return hint_; }
  [[nodiscard]] const py::error_already_set& error() const noexcept { return error_; }

 private:
  py::error_already_set error_;  // its deleter takes the GIL
  bool retryable_;
  std::optional<milliseconds> hint_;
  std::string message_;
};

// The real clock, but its sleeps (the backoff) wake every 50 ms to let
// Python run its signal handlers (PyErr_CheckSignals, with the GIL): on the
// main thread a Ctrl-C, or any handler that raises, ends the sleep, and
// retry() raises that exception. The GIL is not held while it sleeps.
class InterruptibleClock final : public Clock {
 public:
  [[nodiscard]] SteadyTime steady_now() const override {
    return SystemClock::instance().steady_now();
  }
  [[nodiscard]] SteadyTime coarse_steady_now() const override {
    return SystemClock::instance().coarse_steady_now();
  }
  [[nodiscard]] SystemTime system_now() const override {
    return SystemClock::instance().system_now();
  }
  void sleep_for(Duration duration) override;
};

// "TypeError: message" for the exception `error` holds (GIL held).
std::string describe(const py::error_already_set& error) {
  // str() of anything as UTF-8, lone surrogates escaped.
  const auto text_of = [](py::handle object) {
    const py::str text(object);
    const auto bytes = py::reinterpret_steal<py::object>(
        PyUnicode_AsEncodedString(text.ptr(), "utf-8", "backslashreplace"));
    if (!bytes) throw py::error_already_set();
    return bytes.cast<std::string>();
  };
  std::string text;
  try {
    text = text_of(error.type().attr("__name__"));
    const std::string message = text_of(error.value());
    if (!message.empty()) text += ": " + message;
  } catch (...) {
    PyErr_Clear();
    if (text.empty()) text = "an exception";
  }
  return text;
}

py::object datetime_of(SystemTime time) {
  const auto ms = std::chrono::duration_cast<milliseconds>(time.time_since_epoch()).count();
  const py::module_ datetime = py::module_::import("datetime");
  return datetime.attr("datetime")
      .attr("fromtimestamp")(static_cast<double>(ms) / 1000.0,
                             datetime.attr("timezone").attr("utc"));
}

SystemTime time_arg(py::handle value, std::string_view what) {
  const py::module_ datetime = py::module_::import("datetime");
  if (!py::isinstance(value, datetime.attr("datetime")))
    raise_wrong_type(what, "a datetime.datetime", value);
  if (value.attr("tzinfo").is_none())
    raise_python(InvalidArgument(std::string(what) + " must be timezone-aware"));
  const double seconds = value.attr("timestamp")().cast<double>();
  return SystemTime(milliseconds(std::llround(seconds * 1000.0)));
}

double seconds_of(milliseconds duration) { return static_cast<double>(duration.count()) / 1000.0; }

std::string job_id_arg(py::handle value) { return str_arg(value, "job_id"); }

retry::RetryWindow make_window(py::handle job_id, py::handle job_type, py::handle attempts,
                               py::handle duration, py::handle success, py::handle first_attempt) {
  retry::RetryWindow window;
  window.job_id = job_id_arg(job_id);
  window.job_type = str_arg(job_type, "job_type");
  const long long count = int_arg(attempts, "attempts");
  if (count < 1 || count > 1'000'000'000)
    raise_python(InvalidArgument("attempts must be between 1 and 1000000000"));
  window.attempts = static_cast<int>(count);
  window.duration = duration_arg(duration, "duration");
  if (!success.is_none()) window.success = bool_arg(success, "success");
  window.first_attempt =
      first_attempt.is_none()
          ? std::chrono::time_point_cast<milliseconds>(std::chrono::system_clock::now()) -
                window.duration
          : time_arg(first_attempt, "first_attempt");
  window.last_attempt = window.first_attempt + window.duration;
  return window;
}

metrics::Registry* registry_option(py::handle value, py::object& keep) {
  if (value.is_none()) return nullptr;
  if (!py::isinstance<metrics::Registry>(value))
    raise_wrong_type("metrics", "a prodsafe.Registry or None", value);
  keep = py::reinterpret_borrow<py::object>(value);
  return &value.cast<metrics::Registry&>();
}

void InterruptibleClock::sleep_for(Duration duration) {
  constexpr Duration kSlice = std::chrono::milliseconds(50);
  const SteadyTime until = steady_now() + duration;
  for (SteadyTime now = steady_now(); now < until; now = steady_now()) {
    SystemClock::instance().sleep_for(std::min<Duration>(until - now, kSlice));
    if (Py_IsInitialized() == 0 || _Py_IsFinalizing() != 0) continue;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
      py::error_already_set raised;
      std::string message = describe(raised);
      throw PythonFailure(std::move(raised), false, std::nullopt, std::move(message));
    }
  }
}

InterruptibleClock& interruptible_clock() {
  static InterruptibleClock clock;
  return clock;
}

// --- the detectors, each with its registry kept alive ------------------------

struct AnomalyDetector {
  py::object registry;  // destroyed after detector
  std::unique_ptr<retry::RetryAnomalyDetector> detector;
};

struct SpikeDetector {
  py::object registry;
  std::unique_ptr<retry::RetrySpikeDetector> detector;
};

// --- the policy ----------------------------------------------------------------

struct Policy {
  // Declared first, destroyed last: the instruments in `base` refer to it.
  py::object registry_ref;
  retry::RetryPolicy base;
  // None, or a tuple of exception types (retried besides the default rule), or
  // a callable deciding alone.
  py::object retry_on_types;
  py::object retry_on_callable;
  py::object allow_retry;
  py::object on_attempt;
  py::object on_retry;
  py::object on_finish;
  py::object budget_ref;
};

// The callable, or a null object for None (so that `if (object)` tells).
py::object callable_or_none(py::handle value, std::string_view what) {
  if (value.is_none()) return {};
  if (PyCallable_Check(value.ptr()) == 0) raise_wrong_type(what, "a callable or None", value);
  return py::reinterpret_borrow<py::object>(value);
}

bool is_exception_type(py::handle value) {
  return PyType_Check(value.ptr()) != 0 &&
         PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(value.ptr()),
                          reinterpret_cast<PyTypeObject*>(PyExc_BaseException)) != 0;
}

Jitter jitter_arg(py::handle value) {
  if (py::isinstance<Jitter>(value)) return value.cast<Jitter>();
  const std::string name = str_arg(value, "jitter");
  if (name == "none") return Jitter::kNone;
  if (name == "full") return Jitter::kFull;
  if (name == "equal") return Jitter::kEqual;
  if (name == "decorrelated") return Jitter::kDecorrelated;
  raise_python(
      InvalidArgument("jitter must be a Jitter or one of \"none\", \"full\", \"equal\", "
                      "\"decorrelated\", not \"" +
                      name + "\""));
}

std::unique_ptr<Policy> make_policy(py::handle max_attempts, py::handle base_delay,
                                    py::handle max_delay, py::handle jitter,
                                    py::handle max_total_time, py::handle retry_on,
                                    py::handle budget, py::handle allow_retry,
                                    py::handle on_attempt, py::handle on_retry,
                                    py::handle on_finish, py::handle seed, py::handle job_type,
                                    py::handle metrics) {
  auto policy = std::make_unique<Policy>();
  retry::RetryPolicy& base = policy->base;
  const long long attempts = int_arg(max_attempts, "max_attempts");
  if (attempts < 1 || attempts > 1'000'000)
    raise_python(InvalidArgument("max_attempts must be between 1 and 1000000"));
  base.max_attempts = static_cast<int>(attempts);
  base.base_delay = duration_arg(base_delay, "base_delay");
  base.max_delay = duration_arg(max_delay, "max_delay");
  base.jitter = jitter_arg(jitter);
  base.max_total_time =
      max_total_time.is_none() ? milliseconds(0) : duration_arg(max_total_time, "max_total_time");
  // Backoff checks 1 ms <= base_delay <= max_delay <= 24 h: fail here, not in retry().
  static_cast<void>(Backoff(base.jitter, base.base_delay, base.max_delay, 1));
  if (!retry_on.is_none()) {
    if (is_exception_type(retry_on)) {
      policy->retry_on_types = py::make_tuple(retry_on);
    } else if (py::isinstance<py::tuple>(retry_on)) {
      for (const py::handle item : retry_on) {
        if (!is_exception_type(item))
          raise_wrong_type("retry_on", "an exception type, a tuple of them or a callable", item);
      }
      policy->retry_on_types = py::reinterpret_borrow<py::object>(retry_on);
    } else if (PyCallable_Check(retry_on.ptr()) != 0) {
      policy->retry_on_callable = py::reinterpret_borrow<py::object>(retry_on);
    } else {
      raise_wrong_type("retry_on", "an exception type, a tuple of them or a callable", retry_on);
    }
  }
  if (!budget.is_none()) {
    if (!py::isinstance<retry::RetryBudget>(budget))
      raise_wrong_type("budget", "a prodsafe.RetryBudget or None", budget);
    base.budget = budget.cast<std::shared_ptr<retry::RetryBudget>>();
    policy->budget_ref = py::reinterpret_borrow<py::object>(budget);
  }
  policy->allow_retry = callable_or_none(allow_retry, "allow_retry");
  policy->on_attempt = callable_or_none(on_attempt, "on_attempt");
  policy->on_retry = callable_or_none(on_retry, "on_retry");
  policy->on_finish = callable_or_none(on_finish, "on_finish");
  const long long seed_value = int_arg(seed, "seed");
  if (seed_value < 0) raise_python(InvalidArgument("seed must not be negative"));
  base.seed = static_cast<std::uint64_t>(seed_value);
  base.job_type = str_arg(job_type, "job_type");
  base.metrics = retry::RetryInstruments(registry_option(metrics, policy->registry_ref));
  return policy;
}

// Whether fn's exception may be retried (GIL held): never a BaseException
// that is not an Exception (KeyboardInterrupt, SystemExit); with a callable
// retry_on, what it says (not retried when it raises); else when the
// exception's `retryable` attribute is True (every prodsafe.Error has one)
// or it is an instance of the retry_on types.
bool judge(const Policy& policy, const py::error_already_set& error) {
  if (PyErr_GivenExceptionMatches(error.type().ptr(), PyExc_Exception) == 0) return false;
  if (policy.retry_on_callable) {
    try {
      return py::bool_(policy.retry_on_callable(error.value())).cast<bool>();
    } catch (py::error_already_set& raised) {
      raised.discard_as_unraisable("prodsafe.retry: retry_on");
      return false;
    }
  }
  if (policy.retry_on_types && error.matches(policy.retry_on_types)) return true;
  try {
    const py::object flag = py::getattr(error.value(), "retryable", py::none());
    return py::isinstance<py::bool_>(flag) && flag.cast<bool>();
  } catch (py::error_already_set&) {
    return false;
  }
}

// AlreadyInProgress.retry_after as the loop's hint (GIL held).
std::optional<milliseconds> hint_of(const py::error_already_set& error) {
  try {
    const py::object busy = py::module_::import("prodsafe.errors").attr("AlreadyInProgress");
    if (!error.matches(busy)) return std::nullopt;
    const double seconds =
        py::getattr(error.value(), "retry_after", py::float_(0.0)).cast<double>();
    if (!std::isfinite(seconds) || seconds <= 0) return std::nullopt;
    return milliseconds(std::llround(std::min(seconds, 86400.0) * 1000.0));
  } catch (py::error_already_set&) {
    return std::nullopt;
  }
}

// Calls a policy callable with the GIL; what it raises becomes a
// std::runtime_error naming it, which the C++ loop logs, counts and contains.
template <class... Args>
py::object call_policy(const py::object& fn, const char* name, Args&&... args) {
  py::gil_scoped_acquire gil;
  try {
    return fn(std::forward<Args>(args)...);
  } catch (py::error_already_set& error) {
    throw std::runtime_error(std::string(name) + " raised " + describe(error));
  }
}

// What retry() feeds besides the policy's own hooks (retry::observe): the
// tracker (one window per call, under job_id), the histogram, the spike and
// anomaly detectors, and the Python callables told of their alerts. Each
// object is kept alive by retry()'s arguments for the call.
retry::RetryObservers observers_from(const Policy& policy, py::handle job_id, py::handle tracker,
                                     py::handle histogram, py::handle spikes, py::handle on_spike,
                                     py::handle anomalies, py::handle on_anomaly) {
  retry::RetryObservers observers;
  observers.job_type = policy.base.job_type;
  if (!tracker.is_none()) {
    if (!py::isinstance<retry::RetryWindowTracker>(tracker))
      raise_wrong_type("tracker", "a prodsafe.RetryWindowTracker or None", tracker);
    if (job_id.is_none()) raise_python(InvalidArgument("a tracker needs the call's job_id"));
    observers.tracker = &tracker.cast<retry::RetryWindowTracker&>();
  }
  if (!job_id.is_none()) {
    observers.job_id = job_id_arg(job_id);
    if (observers.job_id.empty()) raise_python(InvalidArgument("job_id must not be empty"));
  }
  if (!histogram.is_none()) {
    if (!py::isinstance<retry::RetryHistogram>(histogram))
      raise_wrong_type("histogram", "a prodsafe.RetryHistogram or None", histogram);
    observers.histogram = &histogram.cast<retry::RetryHistogram&>();
  }
  if (!spikes.is_none()) {
    if (!py::isinstance<SpikeDetector>(spikes))
      raise_wrong_type("spike_detector", "a prodsafe.RetrySpikeDetector or None", spikes);
    observers.spikes = spikes.cast<SpikeDetector&>().detector.get();
  }
  if (!anomalies.is_none()) {
    if (!py::isinstance<AnomalyDetector>(anomalies))
      raise_wrong_type("anomaly_detector", "a prodsafe.RetryAnomalyDetector or None", anomalies);
    observers.anomalies = anomalies.cast<AnomalyDetector&>().detector.get();
  }
  // The callables are borrowed from retry()'s arguments, alive for the call.
  if (const py::object callable = callable_or_none(on_spike, "on_spike")) {
    observers.on_spike = [fn = callable.ptr()](const retry::SpikeAlert& alert) {
      py::gil_scoped_acquire gil;
      const py::object held = py::reinterpret_borrow<py::object>(fn);
      try {
        held(alert);
      } catch (py::error_already_set& error) {
        throw std::runtime_error("on_spike raised " + describe(error));
      }
    };
  }
  if (const py::object callable = callable_or_none(on_anomaly, "on_anomaly")) {
    observers.on_anomaly = [fn = callable.ptr()](const retry::Anomaly& anomaly) {
      py::gil_scoped_acquire gil;
      const py::object held = py::reinterpret_borrow<py::object>(fn);
      try {
        held(anomaly);
      } catch (py::error_already_set& error) {
        throw std::runtime_error("on_anomaly raised " + describe(error));
      }
    };
  }
  return observers;
}

// `first` then `second`, each run even when the other throws; their failures
// are thrown together as one std::runtime_error (the loop logs and counts it).
template <class... Args>
std::function<void(Args...)> both(std::function<void(Args...)> first,
                                  std::function<void(Args...)> second) {
  if (!first) return second;
  if (!second) return first;
  return [first = std::move(first), second = std::move(second)](Args... args) {
    std::string failures;
    for (const auto* hook : {&first, &second}) {
      try {
        (*hook)(args...);
      } catch (const std::exception& error) {
        failures += (failures.empty() ? "" : "; ") + std::string(error.what());
      }
    }
    if (!failures.empty()) throw std::runtime_error(failures);
  };
}

py::object run_retry(py::handle fn, py::handle policy_arg, py::handle retry_if_result,
                     py::handle job_id, py::handle tracker, py::handle histogram,
                     py::handle spike_detector, py::handle on_spike, py::handle anomaly_detector,
                     py::handle on_anomaly) {
  if (PyCallable_Check(fn.ptr()) == 0) raise_wrong_type("fn", "a callable", fn);
  std::unique_ptr<Policy> made;
  const Policy* policy = nullptr;
  if (policy_arg.is_none()) {
    made = make_policy(py::int_(3), py::float_(0.1), py::float_(10.0), py::str("full"), py::none(),
                       py::none(), py::none(), py::none(), py::none(), py::none(), py::none(),
                       py::int_(0), py::str("default"), py::none());
    policy = made.get();
  } else {
    if (!py::isinstance<Policy>(policy_arg))
      raise_wrong_type("policy", "a prodsafe.RetryPolicy or None", policy_arg);
    policy = &policy_arg.cast<const Policy&>();
  }
  const py::object predicate = callable_or_none(retry_if_result, "retry_if_result");
  const py::object function = py::reinterpret_borrow<py::object>(fn);

  retry::RetryPolicy loop_policy = policy->base;
  loop_policy.clock = &interruptible_clock();
  loop_policy.retry_on = [](const std::exception& error) {
    const auto* failure = dynamic_cast<const PythonFailure*>(&error);
    return failure != nullptr && failure->retryable();
  };
  loop_policy.retry_after = [](const std::exception& error) -> std::optional<milliseconds> {
    const auto* failure = dynamic_cast<const PythonFailure*>(&error);
    return failure != nullptr ? failure->hint() : std::nullopt;
  };
  if (policy->allow_retry) {
    loop_policy.allow_retry = [policy] {
      const py::object answer = call_policy(policy->allow_retry, "allow_retry");
      py::gil_scoped_acquire gil;
      return PyObject_IsTrue(answer.ptr()) == 1;
    };
  }
  if (policy->on_attempt) {
    loop_policy.hooks.on_attempt = [policy](int attempt) {
      call_policy(policy->on_attempt, "on_attempt", attempt);
    };
  }
  if (policy->on_retry) {
    loop_policy.hooks.on_retry = [policy](int attempt, milliseconds delay,
                                          const std::string& reason) {
      call_policy(policy->on_retry, "on_retry", attempt, seconds_of(delay), reason);
    };
  }
  if (policy->on_finish) {
    loop_policy.hooks.on_finish = [policy](int attempts, bool success, milliseconds elapsed) {
      call_policy(policy->on_finish, "on_finish", attempts, success, seconds_of(elapsed));
    };
  }

  const bool observed =
      !(job_id.is_none() && tracker.is_none() && histogram.is_none() && spike_detector.is_none() &&
        on_spike.is_none() && anomaly_detector.is_none() && on_anomaly.is_none());
  if (observed) {
    retry::RetryHooks fed =
        retry::observe(observers_from(*policy, job_id, tracker, histogram, spike_detector, on_spike,
                                      anomaly_detector, on_anomaly));
    loop_policy.hooks.on_attempt = both(fed.on_attempt, loop_policy.hooks.on_attempt);
    loop_policy.hooks.on_retry = both(fed.on_retry, loop_policy.hooks.on_retry);
    loop_policy.hooks.on_finish = both(fed.on_finish, loop_policy.hooks.on_finish);
  }

  using Result = std::shared_ptr<PyRef>;
  auto attempt = [&function, policy]() -> Result {
    py::gil_scoped_acquire gil;
    try {
      return std::make_shared<PyRef>(function());
    } catch (py::error_already_set& error) {
      const bool retryable = judge(*policy, error);
      const auto hint = hint_of(error);
      std::string message = describe(error);
      throw PythonFailure(std::move(error), retryable, hint, std::move(message));
    }
  };
  auto asks_for_retry = [&predicate](const Result& result) {
    if (!predicate) return false;
    py::gil_scoped_acquire gil;
    try {
      return PyObject_IsTrue(predicate(result->object).ptr()) == 1;
    } catch (py::error_already_set& error) {
      throw std::runtime_error("retry_if_result raised " + describe(error));
    }
  };

  Result result;
  try {
    gil_release release;
    result = retry::run_if(loop_policy, attempt, asks_for_retry);
  } catch (const PythonFailure& failure) {
    throw failure.error();  // the dispatcher raises the original exception again
  }
  return result->object;
}

}  // namespace

void bind_retry(py::module_& m) {
  py::class_<retry::RetryWindow>(m, "RetryWindow", R"doc(
A job's span from its first attempt to its final result.

    RetryWindow(job_id, job_type="default", attempts=1, duration=0,
                success=None, first_attempt=None)

Fields: job_id, job_type, first_attempt and last_attempt (aware UTC
datetimes), attempts (the first is 1), duration (seconds, float), success
(None while open). RetryWindowTracker returns them; make one to feed
RetryAnomalyDetector.record_window() yourself.
)doc")
      .def(py::init(&make_window), py::arg("job_id"), py::arg("job_type") = "default",
           py::arg("attempts") = 1, py::arg("duration") = 0, py::arg("success") = py::none(),
           py::arg("first_attempt") = py::none())
      .def_readonly("job_id", &retry::RetryWindow::job_id)
      .def_readonly("job_type", &retry::RetryWindow::job_type)
      .def_readonly("attempts", &retry::RetryWindow::attempts)
      .def_property_readonly(
          "first_attempt", [](const retry::RetryWindow& w) { return datetime_of(w.first_attempt); })
      .def_property_readonly(
          "last_attempt", [](const retry::RetryWindow& w) { return datetime_of(w.last_attempt); })
      .def_property_readonly("duration",
                             [](const retry::RetryWindow& w) { return seconds_of(w.duration); })
      .def_property_readonly("success",
                             [](const retry::RetryWindow& w) -> py::object {
                               if (!w.success) return py::none();
                               return py::bool_(*w.success);
                             })
      .def("__repr__", [](const retry::RetryWindow& w) {
        return "RetryWindow(job_id=" + w.job_id + ", job_type=" + w.job_type +
               ", attempts=" + std::to_string(w.attempts) +
               ", duration=" + std::to_string(seconds_of(w.duration)) +
               ", success=" + (w.success ? (*w.success ? "True" : "False") : "None") + ")";
      });

  py::class_<retry::RetryWindowTracker>(m, "RetryWindowTracker", R"doc(
Tracks retry windows (the seed's RetryWindowTracker): from a job's first
attempt to its final result.

    RetryWindowTracker(redis=None, ttl=86400)

redis: a prodsafe.Redis or a redis-py client: windows live in Redis under
"retry:window:<job_id>" (a hash; times from the server's clock), shared by
every process; None keeps them in this process. A window expires ttl seconds
after it started. Thread-safe.
)doc")
      .def(py::init([](py::handle redis, py::handle ttl) {
             std::shared_ptr<retry::RetryWindowStore> store;
             if (redis.is_none()) {
               store = std::make_shared<retry::InMemoryRetryWindowStore>();
             } else {
               store = std::make_shared<retry::RedisRetryWindowStore>(client_arg(redis));
             }
             retry::TrackerOptions options;
             options.ttl = duration_arg(ttl, "ttl");
             return std::make_unique<retry::RetryWindowTracker>(std::move(store), options);
           }),
           py::arg("redis") = py::none(), py::arg("ttl") = 86400)
      .def(
          "start_window",
          [](retry::RetryWindowTracker& tracker, py::handle job_id, py::handle job_type) {
            const std::string id = job_id_arg(job_id);
            const std::string type = str_arg(job_type, "job_type");
            gil_release release;
            return tracker.start_window(id, type);
          },
          py::arg("job_id"), py::arg("job_type") = "default",
          "Opens the window (restarting one that exists) with its first attempt.")
      .def(
          "increment_attempt",
          [](retry::RetryWindowTracker& tracker, py::handle job_id) {
            const std::string id = job_id_arg(job_id);
            gil_release release;
            return tracker.increment_attempt(id);
          },
          py::arg("job_id"),
          "Counts one more attempt. InvalidArgument when the job has no open window.")
      .def(
          "close_window",
          [](retry::RetryWindowTracker& tracker, py::handle job_id, py::handle success) {
            const std::string id = job_id_arg(job_id);
            const bool outcome = bool_arg(success, "success");
            gil_release release;
            return tracker.close_window(id, outcome);
          },
          py::arg("job_id"), py::arg("success"),
          "Closes the window and returns it with its outcome. InvalidArgument when the\n"
          "job has no open window.");

  py::class_<retry::RetryHistogram>(m, "RetryHistogram", R"doc(
How many attempts jobs needed (the seed's RetryHistogram), in the seed's
buckets: "1", "2", "3", "4-5", "6-10", "11-20", "21+". Thread-safe.
)doc")
      .def(py::init<>())
      .def(
          "record",
          [](retry::RetryHistogram& histogram, py::handle attempts) {
            histogram.record(
                static_cast<int>(std::clamp<long long>(int_arg(attempts, "attempts"), 0, 1 << 30)));
          },
          py::arg("attempts"), "Counts one job that needed `attempts` attempts.")
      .def(
          "merge",
          [](retry::RetryHistogram& histogram, py::handle other) {
            if (!py::isinstance<retry::RetryHistogram>(other))
              raise_wrong_type("other", "a prodsafe.RetryHistogram", other);
            histogram.merge(other.cast<const retry::RetryHistogram&>());
          },
          py::arg("other"), "Adds another histogram's counts to this one.")
      .def(
          "counts",
          [](const retry::RetryHistogram& histogram) {
            py::dict out;
            const auto counts = histogram.counts();
            for (std::size_t i = 0; i < counts.size(); ++i)
              out[py::str(std::string(retry::RetryHistogram::bucket_label(i)))] = counts[i];
            return out;
          },
          "{bucket label: jobs}, in bucket order.")
      .def(
          "fractions",
          [](const retry::RetryHistogram& histogram) {
            py::dict out;
            const auto fractions = histogram.fractions();
            for (std::size_t i = 0; i < fractions.size(); ++i)
              out[py::str(std::string(retry::RetryHistogram::bucket_label(i)))] = fractions[i];
            return out;
          },
          "{bucket label: share of the total} (all 0 when empty).")
      .def_property_readonly("total", &retry::RetryHistogram::total)
      .def_static(
          "bucket_for",
          [](py::handle attempts) {
            const auto count =
                static_cast<int>(std::clamp<long long>(int_arg(attempts, "attempts"), 0, 1 << 30));
            return std::string(
                retry::RetryHistogram::bucket_label(retry::RetryHistogram::bucket_for(count)));
          },
          py::arg("attempts"), "The label of the bucket `attempts` falls in.")
      .def("__repr__", [](const retry::RetryHistogram& histogram) {
        std::string text = "RetryHistogram(";
        const auto counts = histogram.counts();
        for (std::size_t i = 0; i < counts.size(); ++i) {
          if (i > 0) text += ", ";
          text += std::string(retry::RetryHistogram::bucket_label(i)) + ": " +
                  std::to_string(counts[i]);
        }
        return text + ")";
      });

  py::class_<retry::FleetHistogram>(m, "FleetHistogram", R"doc(
A RetryHistogram per job type kept in Redis ("retry:histogram:<job_type>"),
so every process adds to and reads the same one.

    FleetHistogram(redis)
)doc")
      .def(py::init([](py::handle redis) {
             return std::make_unique<retry::FleetHistogram>(client_arg(redis));
           }),
           py::arg("redis"))
      .def(
          "record",
          [](retry::FleetHistogram& fleet, py::handle job_type, py::handle attempts) {
            const std::string type = str_arg(job_type, "job_type");
            const auto count =
                static_cast<int>(std::clamp<long long>(int_arg(attempts, "attempts"), 0, 1 << 30));
            gil_release release;
            fleet.record(type, count);
          },
          py::arg("job_type"), py::arg("attempts"))
      .def(
          "snapshot",
          [](retry::FleetHistogram& fleet, py::handle job_type) {
            const std::string type = str_arg(job_type, "job_type");
            gil_release release;
            return fleet.snapshot(type);
          },
          py::arg("job_type"), "The fleet's RetryHistogram for the job type.")
      .def(
          "reset",
          [](retry::FleetHistogram& fleet, py::handle job_type) {
            const std::string type = str_arg(job_type, "job_type");
            gil_release release;
            fleet.reset(type);
          },
          py::arg("job_type"));

  py::enum_<retry::AnomalyType>(m, "AnomalyType")
      .value("HIGH_RETRY_RATE", retry::AnomalyType::kHighRetryRate)
      .value("LONG_RETRY_WINDOW", retry::AnomalyType::kLongRetryWindow)
      .value("EXCESSIVE_ATTEMPTS", retry::AnomalyType::kExcessiveAttempts);

  py::class_<retry::Anomaly>(m, "Anomaly", R"doc(
An anomalous retry pattern: type (AnomalyType), job_type, job_id (the window
that triggered it), value (attempts, window seconds, or the retry rate 0..1),
threshold (same unit) and message. str() gives the message.
)doc")
      .def_readonly("type", &retry::Anomaly::type)
      .def_readonly("job_type", &retry::Anomaly::job_type)
      .def_readonly("job_id", &retry::Anomaly::job_id)
      .def_property_readonly(
          "value",
          [](const retry::Anomaly& a) {
            return a.type == retry::AnomalyType::kLongRetryWindow ? a.value / 1000.0 : a.value;
          })
      .def_property_readonly("threshold",
                             [](const retry::Anomaly& a) {
                               return a.type == retry::AnomalyType::kLongRetryWindow
                                          ? a.threshold / 1000.0
                                          : a.threshold;
                             })
      .def_readonly("message", &retry::Anomaly::message)
      .def("__str__", [](const retry::Anomaly& a) { return a.message; })
      .def("__repr__", [](const retry::Anomaly& a) {
        return "Anomaly(" + std::string(retry::to_string(a.type)) + ", job_type=" + a.job_type +
               ", job_id=" + a.job_id + ")";
      });

  py::class_<AnomalyDetector>(m, "RetryAnomalyDetector", R"doc(
Finds anomalous retry patterns in closed windows (the seed's
RetryAnomalyDetector). Each rule fires when its value reaches its threshold:

    RetryAnomalyDetector(high_retry_rate=0.5, rate_window=100,
                         rate_min_windows=20, long_window=300,
                         excessive_attempts=10, max_job_types=1000,
                         metrics=None)

EXCESSIVE_ATTEMPTS: a window needed at least excessive_attempts attempts;
LONG_RETRY_WINDOW: it lasted at least long_window seconds; HIGH_RETRY_RATE:
among the last rate_window windows of a job type (once rate_min_windows were
seen) the share that needed a retry reached high_retry_rate (fires on the
crossing, again only after falling back). Thread-safe.
)doc")
      .def(
          py::init([](py::handle high_retry_rate, py::handle rate_window,
                      py::handle rate_min_windows, py::handle long_window,
                      py::handle excessive_attempts, py::handle max_job_types, py::handle metrics) {
            auto made = std::make_unique<AnomalyDetector>();
            retry::AnomalyThresholds thresholds;
            thresholds.high_retry_rate = float_arg(high_retry_rate, "high_retry_rate");
            const long long window = int_arg(rate_window, "rate_window");
            const long long min_windows = int_arg(rate_min_windows, "rate_min_windows");
            const long long attempts = int_arg(excessive_attempts, "excessive_attempts");
            const long long job_types = int_arg(max_job_types, "max_job_types");
            if (window < 1 || min_windows < 0 || attempts < 1 || job_types < 1 ||
                window > 1'000'000 || job_types > 1'000'000 || attempts > 1'000'000'000)
              raise_python(InvalidArgument(
                  "rate_window, excessive_attempts and max_job_types must be positive (rate_window "
                  "and max_job_types at most 1000000), rate_min_windows not negative"));
            thresholds.rate_window = static_cast<std::size_t>(window);
            thresholds.rate_min_windows = static_cast<std::size_t>(min_windows);
            thresholds.long_window = duration_arg(long_window, "long_window");
            thresholds.excessive_attempts = static_cast<int>(attempts);
            thresholds.max_job_types = static_cast<std::size_t>(job_types);
            thresholds.metrics = registry_option(metrics, made->registry);
            made->detector = std::make_unique<retry::RetryAnomalyDetector>(thresholds);
            return made;
          }),
          py::arg("high_retry_rate") = 0.5, py::arg("rate_window") = 100,
          py::arg("rate_min_windows") = 20, py::arg("long_window") = 300,
          py::arg("excessive_attempts") = 10, py::arg("max_job_types") = 1000,
          py::arg("metrics") = py::none())
      .def(
          "record_window",
          [](AnomalyDetector& self, py::handle window) {
            if (!py::isinstance<retry::RetryWindow>(window))
              raise_wrong_type("window", "a prodsafe.RetryWindow", window);
            return self.detector->record_window(window.cast<const retry::RetryWindow&>());
          },
          py::arg("window"), "The anomalies (a list, often empty) this window shows.")
      .def_property_readonly(
          "untracked_windows",
          [](const AnomalyDetector& self) { return self.detector->untracked_windows(); })
      .def_property_readonly(
          "anomalies", [](const AnomalyDetector& self) { return self.detector->anomalies(); });

  py::class_<retry::SpikeAlert>(m, "SpikeAlert", R"doc(
A retry spike: count (retries in the current window), rate_per_second,
baseline (average retries per window before it), multiplier (count /
baseline; inf when the baseline is 0), threshold_multiplier, window
(seconds), at (aware UTC datetime) and message. str() gives the message.
)doc")
      .def_readonly("count", &retry::SpikeAlert::count)
      .def_readonly("rate_per_second", &retry::SpikeAlert::rate_per_second)
      .def_readonly("baseline", &retry::SpikeAlert::baseline)
      .def_readonly("multiplier", &retry::SpikeAlert::multiplier)
      .def_readonly("threshold_multiplier", &retry::SpikeAlert::threshold_multiplier)
      .def_property_readonly("window",
                             [](const retry::SpikeAlert& a) { return seconds_of(a.window); })
      .def_property_readonly("at", [](const retry::SpikeAlert& a) { return datetime_of(a.at); })
      .def_readonly("message", &retry::SpikeAlert::message)
      .def("__str__", [](const retry::SpikeAlert& a) { return a.message; })
      .def("__repr__", [](const retry::SpikeAlert& a) {
        return "SpikeAlert(count=" + std::to_string(a.count) +
               ", baseline=" + std::to_string(a.baseline) + ")";
      });

  py::class_<SpikeDetector>(m, "RetrySpikeDetector", R"doc(
Detects sudden surges of retries (the seed's RetrySpikeDetector).

    RetrySpikeDetector(window=60, slots_per_window=10, baseline_windows=10,
                       multiplier=3.0, min_count=10, cooldown=300,
                       job_type="default", metrics=None)

record_retry() counts retries in a sliding window of `window` seconds and
returns a SpikeAlert when the current count reaches multiplier x the
baseline (the average over the baseline_windows windows before) and at least
min_count, and no alert came within cooldown seconds; else None. No alert
before one full window of history. Thread-safe.
)doc")
      .def(py::init([](py::handle window, py::handle slots_per_window, py::handle baseline_windows,
                       py::handle multiplier, py::handle min_count, py::handle cooldown,
                       py::handle job_type, py::handle metrics) {
             auto made = std::make_unique<SpikeDetector>();
             retry::SpikeOptions options;
             options.window = duration_arg(window, "window");
             const long long slots = int_arg(slots_per_window, "slots_per_window");
             const long long windows = int_arg(baseline_windows, "baseline_windows");
             const long long minimum = int_arg(min_count, "min_count");
             if (slots < 1 || slots > 10'000 || windows < 1 || windows > 10'000 || minimum < 0)
               raise_python(InvalidArgument(
                   "slots_per_window and baseline_windows must be between 1 and 10000, min_count "
                   "not negative"));
             options.slots_per_window = static_cast<int>(slots);
             options.baseline_windows = static_cast<int>(windows);
             options.multiplier = float_arg(multiplier, "multiplier");
             options.min_count = static_cast<std::uint64_t>(minimum);
             options.cooldown = duration_arg(cooldown, "cooldown");
             options.job_type = str_arg(job_type, "job_type");
             options.metrics = registry_option(metrics, made->registry);
             made->detector = std::make_unique<retry::RetrySpikeDetector>(options);
             return made;
           }),
           py::arg("window") = 60, py::arg("slots_per_window") = 10,
           py::arg("baseline_windows") = 10, py::arg("multiplier") = 3.0, py::arg("min_count") = 10,
           py::arg("cooldown") = 300, py::arg("job_type") = "default",
           py::arg("metrics") = py::none())
      .def(
          "record_retry",
          [](SpikeDetector& self, py::handle count) -> py::object {
            const long long retries = int_arg(count, "count");
            if (retries < 0) raise_python(InvalidArgument("count must not be negative"));
            auto alert = self.detector->record_retry(static_cast<std::uint64_t>(retries));
            if (!alert) return py::none();
            return py::cast(std::move(*alert));
          },
          py::arg("count") = 1,
          "Counts retries now; a SpikeAlert when they make a spike, else None.")
      .def_property_readonly("current_count",
                             [](SpikeDetector& self) { return self.detector->current_count(); })
      .def_property_readonly("baseline",
                             [](SpikeDetector& self) { return self.detector->baseline(); })
      .def_property_readonly("alerts", [](SpikeDetector& self) { return self.detector->alerts(); });

  py::class_<retry::RetryBudget, std::shared_ptr<retry::RetryBudget>>(m, "RetryBudget", R"doc(
A retry budget shared by every caller of one dependency: retries are allowed
up to `ratio` of the requests seen in the last `ttl` seconds, plus
min_retries_per_second x ttl, so a failing dependency is not hit with
max_attempts x its load. retry() records each call as a request and takes
each retry from the budget of its policy.

    RetryBudget(ratio=0.2, min_retries_per_second=10, ttl=10)
)doc")
      .def(py::init([](py::handle ratio, py::handle min_retries_per_second, py::handle ttl) {
             retry::RetryBudgetOptions options;
             options.ratio = float_arg(ratio, "ratio");
             options.min_retries_per_second =
                 float_arg(min_retries_per_second, "min_retries_per_second");
             options.ttl = duration_arg(ttl, "ttl");
             return std::make_shared<retry::RetryBudget>(options);
           }),
           py::arg("ratio") = 0.2, py::arg("min_retries_per_second") = 10, py::arg("ttl") = 10)
      .def("record_request", &retry::RetryBudget::record_request,
           "Counts one original request (not a retry).")
      .def("try_withdraw", &retry::RetryBudget::try_withdraw,
           "Takes one retry from the budget; False when it is spent.")
      .def("refund", &retry::RetryBudget::refund, "Gives back a withdrawn retry not made.")
      .def_property_readonly("balance", &retry::RetryBudget::balance, "Retries allowed now.")
      .def_property_readonly("requests", &retry::RetryBudget::requests)
      .def_property_readonly("retries", &retry::RetryBudget::retries)
      .def_property_readonly("refused", &retry::RetryBudget::refused);

  py::enum_<Jitter>(m, "Jitter", "Backoff jitter (AWS's 'Exponential Backoff and Jitter').")
      .value("NONE", Jitter::kNone)
      .value("FULL", Jitter::kFull)
      .value("EQUAL", Jitter::kEqual)
      .value("DECORRELATED", Jitter::kDecorrelated);

  py::class_<Policy>(m, "RetryPolicy", R"doc(
How retry() retries.

    RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=10.0,
                jitter=Jitter.FULL, max_total_time=None, retry_on=None,
                budget=None, allow_retry=None, on_attempt=None,
                on_retry=None, on_finish=None, seed=0, job_type="default",
                metrics=None)

max_attempts: attempts in all (1: no retries). base_delay, max_delay:
capped exponential backoff in seconds (1 ms <= base <= max <= 24 h).
max_total_time: no retry whose delay would end past this many seconds since
the first attempt (None: no limit).

Which exceptions are retried: by default, those whose `retryable` attribute
is True: every prodsafe.Error has one (StoreUnavailable, Timeout,
AlreadyInProgress... are retryable; InvalidArgument, Conflict... are not),
and any exception class of yours may set it. retry_on adds exception types
(a class or a tuple of classes) retried as well, or is a callable
retry_on(exc) -> bool that decides alone (not retried when it raises).
KeyboardInterrupt, SystemExit and other non-Exception BaseExceptions are
never retried. AlreadyInProgress.retry_after is the least delay. The backoff
sleeps without the GIL and wakes every 50 ms for Python's signal handlers: a
Ctrl-C (or any handler that raises) ends it, and retry() raises that.

budget: a RetryBudget; allow_retry: a callable asked before each retry (a
circuit breaker's gate), False stops retrying. on_attempt(attempt),
on_retry(attempt, delay_seconds, reason), on_finish(attempts, success,
elapsed_seconds): hooks; what a hook or allow_retry raises is logged and
counted (prodsafe_retry_hook_errors_total), never fn's outcome. job_type and
metrics (a Registry; default: the default registry) name where the loop's
counters go.
)doc")
      .def(py::init(&make_policy), py::arg("max_attempts") = 3, py::arg("base_delay") = 0.1,
           py::arg("max_delay") = 10.0, py::arg("jitter") = Jitter::kFull,
           py::arg("max_total_time") = py::none(), py::arg("retry_on") = py::none(),
           py::arg("budget") = py::none(), py::arg("allow_retry") = py::none(),
           py::arg("on_attempt") = py::none(), py::arg("on_retry") = py::none(),
           py::arg("on_finish") = py::none(), py::arg("seed") = 0, py::arg("job_type") = "default",
           py::arg("metrics") = py::none())
      .def_property_readonly("max_attempts", [](const Policy& p) { return p.base.max_attempts; })
      .def_property_readonly("base_delay",
                             [](const Policy& p) { return seconds_of(p.base.base_delay); })
      .def_property_readonly("max_delay",
                             [](const Policy& p) { return seconds_of(p.base.max_delay); })
      .def_property_readonly("jitter", [](const Policy& p) { return p.base.jitter; })
      .def_property_readonly("max_total_time",
                             [](const Policy& p) -> py::object {
                               if (p.base.max_total_time.count() == 0) return py::none();
                               return py::float_(seconds_of(p.base.max_total_time));
                             })
      .def_property_readonly("budget",
                             [](const Policy& p) -> py::object {
                               if (!p.budget_ref) return py::none();
                               return p.budget_ref;
                             })
      .def_property_readonly("job_type", [](const Policy& p) { return p.base.job_type; });

  m.def("retry", &run_retry, py::arg("fn"), py::arg("policy") = py::none(), py::kw_only(),
        py::arg("retry_if_result") = py::none(), py::arg("job_id") = py::none(),
        py::arg("tracker") = py::none(), py::arg("histogram") = py::none(),
        py::arg("spike_detector") = py::none(), py::arg("on_spike") = py::none(),
        py::arg("anomaly_detector") = py::none(), py::arg("on_anomaly") = py::none(), R"doc(
Calls fn() until it returns, retrying as `policy` says (default:
RetryPolicy()), and returns its result. fn is called with the GIL held; the
backoff sleeps release it. When retrying ends, fn's last exception is raised
again, unchanged. retry_if_result(result) -> True asks for another attempt
after a result (the last result is returned when retries run out).

The call can feed the retry-hardening classes: tracker (a
RetryWindowTracker: the call's window under job_id, opened on the first
attempt, counted on each, closed with the outcome), histogram (a
RetryHistogram: the attempts it took), spike_detector (each retry; on_spike
gets its alerts) and anomaly_detector (the finished window; on_anomaly gets
each anomaly). A failure among them (a tracker whose Redis is down, a
callable raising) is logged and counted, never the call's outcome.
)doc");
}

}  // namespace prodsafe::python
