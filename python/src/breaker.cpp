// prodsafe.CircuitBreaker: the fleet-wide circuit breaker
// (breaker/circuit_breaker.hpp) on Redis or, for users' unit tests, on an
// InMemoryBreakerStore (docs/python.md).
//
// can_retry() in CLOSED answers from the breaker's local view (no round
// trip); it still drops the GIL, because the same call makes one when the
// view is stale or the breaker is not CLOSED. Alert hooks fire on the thread
// that made the transition, without the GIL (the Python hooks take it).
#include <cmath>
#include <utility>

#include "bindings.hpp"
#include "prodsafe/alerts/alert_hooks.hpp"
#include "prodsafe/breaker/circuit_breaker.hpp"
#include "prodsafe/breaker/in_memory_breaker_store.hpp"
#include "prodsafe/breaker/redis_breaker_store.hpp"

namespace prodsafe::python {

namespace {

using breaker::BreakerStore;
using breaker::CircuitBreaker;
using breaker::CircuitBreakerOptions;
using breaker::InMemoryBreakerStore;
using breaker::Permission;
using breaker::RedisBreakerStore;
using breaker::State;
using std::chrono::milliseconds;

// What Python holds: the breaker, with its store (for snapshot()) and rules.
struct PyBreaker {
  std::shared_ptr<BreakerStore> store;
  CircuitBreakerOptions options;
  std::unique_ptr<CircuitBreaker> breaker;
};

// prodsafe.breaker.CircuitState (a str enum defined in Python), fetched once.
py::object state_of(State state) {
  static PyObject* states = nullptr;
  if (states == nullptr) {
    states =
        py::object(py::module_::import("prodsafe.breaker").attr("CircuitState")).release().ptr();
  }
  return py::reinterpret_borrow<py::object>(states)(std::string(breaker::to_string(state)));
}

double seconds_of(milliseconds duration) { return static_cast<double>(duration.count()) / 1000.0; }

std::uint64_t positive_count(py::handle value, std::string_view what) {
  const long long number = int_arg(value, what);
  if (number < 1)
    raise_python(
        InvalidArgument(std::string(what) + " must be at least 1, got " + std::to_string(number)));
  return static_cast<std::uint64_t>(number);
}

int bounded_int(py::handle value, std::string_view what, int low, int high) {
  const long long number = int_arg(value, what);
  if (number < low || number > high)
    raise_python(InvalidArgument(std::string(what) + " must be " + std::to_string(low) + " to " +
                                 std::to_string(high) + ", got " + std::to_string(number)));
  return static_cast<int>(number);
}

// A duration that must be positive (the breaker refuses 0 with its C++ name).
milliseconds positive_duration(py::handle value, std::string_view what) {
  const milliseconds duration = duration_arg(value, what);
  if (duration.count() <= 0)
    raise_python(InvalidArgument(std::string(what) + " must be more than 0 seconds"));
  return duration;
}

std::shared_ptr<alerts::AlertHooks> hooks_arg(py::handle value) {
  if (value.is_none()) return nullptr;
  if (!py::isinstance<alerts::AlertHooks>(value))
    raise_wrong_type("alert_hooks", "a prodsafe.AlertHooks or None", value);
  return value.cast<std::shared_ptr<alerts::AlertHooks>>();
}

void apply_option(CircuitBreakerOptions& options, const std::string& name, py::handle value) {
  if (name == "time_window") {
    options.time_window = positive_duration(value, name);
  } else if (name == "window_buckets") {
    options.window_buckets = bounded_int(value, name, 1, 1000);
  } else if (name == "failure_ratio") {
    const double ratio = float_arg(value, name);
    if (!(ratio >= 0 && ratio <= 1))
      raise_python(InvalidArgument("failure_ratio must be in [0, 1] (0: count mode)"));
    options.failure_ratio = ratio;
  } else if (name == "minimum_throughput") {
    const long long calls = int_arg(value, name);
    if (calls < 0) raise_python(InvalidArgument("minimum_throughput must be >= 0"));
    options.minimum_throughput = static_cast<std::uint64_t>(calls);
  } else if (name == "break_duration") {
    options.break_duration = positive_duration(value, name);
  } else if (name == "break_multiplier") {
    const double multiplier = float_arg(value, name);
    if (!(multiplier >= 1 && std::isfinite(multiplier)))
      raise_python(InvalidArgument("break_multiplier must be a finite number >= 1"));
    options.break_multiplier = multiplier;
  } else if (name == "max_break_duration") {
    options.max_break_duration = positive_duration(value, name);
  } else if (name == "half_open_max_probes") {
    options.half_open_max_probes = bounded_int(value, name, 1, 100);
  } else if (name == "max_half_open_wait") {
    options.max_half_open_wait = positive_duration(value, name);
  } else if (name == "staleness") {
    options.staleness = positive_duration(value, name);
  } else if (name == "subscribe") {
    options.subscribe = bool_arg(value, name);
  } else {
    raise_python(InvalidArgument(
        "unknown option '" + name +
        "' for prodsafe.CircuitBreaker; the options are failure_threshold, time_window_minutes "
        "(or time_window), alert_hooks, window_buckets, failure_ratio, minimum_throughput, "
        "break_duration, break_multiplier, max_break_duration, half_open_max_probes, "
        "max_half_open_wait, staleness, subscribe"));
  }
}

std::shared_ptr<PyBreaker> make_breaker(py::handle redis, py::handle job_type,
                                        py::handle failure_threshold,
                                        py::handle time_window_minutes, py::handle alert_hooks,
                                        const py::kwargs& kwargs) {
  if (redis.is_none())
    raise_python(InvalidArgument(
        "CircuitBreaker needs a Redis connection (prodsafe.Redis or a redis-py client) or a "
        "prodsafe.InMemoryBreakerStore"));
  if (job_type.is_none()) raise_python(InvalidArgument("CircuitBreaker needs a job_type"));
  auto self = std::make_unique<PyBreaker>();
  const std::string job = str_arg(job_type, "job_type");
  CircuitBreakerOptions& options = self->options;
  options.failure_threshold = positive_count(failure_threshold, "failure_threshold");
  if (!time_window_minutes.is_none()) {
    if (kwargs.contains("time_window"))
      raise_python(InvalidArgument("give time_window_minutes or time_window (seconds), not both"));
    const py::object timedelta = py::module_::import("datetime").attr("timedelta");
    if (py::isinstance(time_window_minutes, timedelta)) {
      options.time_window = positive_duration(time_window_minutes, "time_window_minutes");
    } else {
      if (py::isinstance<py::bool_>(time_window_minutes) ||
          !(py::isinstance<py::int_>(time_window_minutes) ||
            py::isinstance<py::float_>(time_window_minutes)))
        raise_wrong_type("time_window_minutes", "a number of minutes or a datetime.timedelta",
                         time_window_minutes);
      const double minutes = time_window_minutes.cast<double>();
      if (!std::isfinite(minutes) || minutes <= 0 || minutes > 24 * 60)
        raise_python(InvalidArgument("time_window_minutes must be more than 0 and at most 1440"));
      options.time_window = milliseconds(std::llround(minutes * 60000.0));
    }
  }
  options.alert_hooks = hooks_arg(alert_hooks);
  for (const auto& [key, value] : kwargs)
    apply_option(options, str_arg(key, "a keyword name"), value);

  if (py::isinstance<InMemoryBreakerStore>(redis)) {
    self->store = redis.cast<std::shared_ptr<InMemoryBreakerStore>>();
  } else {
    self->store = std::make_shared<RedisBreakerStore>(client_arg(redis));
  }
  // Validates the job type and the options together (InvalidArgument naming
  // the field); starts the watch (Redis: a connection and a thread of its own).
  {
    gil_release release;
    self->breaker = std::make_unique<CircuitBreaker>(self->store, job, self->options);
  }
  return released_on_delete(std::move(self));
}

// The tuple can_retry() returns in the common case, made once (never freed:
// it may be needed until the interpreter is gone).
py::object allowed_tuple() {
  static PyObject* tuple = py::make_tuple(true, py::none()).release().ptr();
  return py::reinterpret_borrow<py::object>(tuple);
}

Permission ask(PyBreaker& self) {
  gil_release release;
  return self.breaker->can_retry();
}

py::object permission_tuple(const Permission& permission) {
  if (permission.allowed) return allowed_tuple();
  return py::make_tuple(false, permission.reason);
}

}  // namespace

void bind_breaker(py::module_& m) {
  py::class_<InMemoryBreakerStore, std::shared_ptr<InMemoryBreakerStore>>(m, "InMemoryBreakerStore",
                                                                          R"doc(
Breaker state kept in this process only, for unit tests without Redis: pass
it to CircuitBreaker in place of the Redis connection. Breakers sharing one
store (same job_type) share their state, as breakers on one Redis do across
the fleet; nothing is shared with other processes.
)doc")
      .def(py::init([] { return std::make_shared<InMemoryBreakerStore>(); }));

  py::class_<Permission>(m, "Permission", R"doc(
What CircuitBreaker.check() answers: allowed, reason (None when allowed),
state, retry_after (seconds) and the HALF_OPEN probe permit it holds. Pass
it to record_success()/record_failure() when recording on another thread.
)doc")
      .def_readonly("allowed", &Permission::allowed)
      .def_property_readonly("reason",
                             [](const Permission& p) -> py::object {
                               if (p.allowed) return py::none();
                               return py::str(p.reason);
                             })
      .def_property_readonly("state", [](const Permission& p) { return state_of(p.state); })
      .def_property_readonly("retry_after",
                             [](const Permission& p) { return seconds_of(p.retry_after); })
      .def_readonly("permit", &Permission::permit)
      .def("__bool__", [](const Permission& p) { return p.allowed; })
      .def("__repr__", [](const Permission& p) {
        return "Permission(allowed=" + std::string(p.allowed ? "True" : "False") +
               ", state=" + std::string(breaker::to_string(p.state)) +
               (p.allowed ? std::string() : ", reason='" + p.reason + "'") + ")";
      });

  py::class_<PyBreaker, std::shared_ptr<PyBreaker>>(m, "CircuitBreaker", R"doc(
A circuit breaker the whole fleet shares (the seed's CircuitBreaker).

    CircuitBreaker(redis, job_type, failure_threshold=10, time_window_minutes=5,
                   alert_hooks=None, **options)

redis: a prodsafe.Redis, a redis-py client, or an InMemoryBreakerStore (one
process only, for unit tests). State lives in Redis: failures recorded by
one process open the breaker for every process. The alert hooks fire once
per fleet-wide transition, in the process that made it.

Options (durations in seconds or datetime.timedelta): time_window (instead
of time_window_minutes), window_buckets (10), failure_ratio (0: count mode),
minimum_throughput (20), break_duration (30), break_multiplier (2.0),
max_break_duration (300), half_open_max_probes (1), max_half_open_wait (30),
staleness (1: how old the local CLOSED view may get), subscribe (True: watch
Redis for other processes' transitions; one connection and thread).

    if not breaker.can_retry()[0]:
        return
    try:
        result = perform_operation()
        breaker.record_success()
    except Exception:
        breaker.record_failure()
        raise

can_retry(), record_success() and record_failure() never raise: with Redis
unreachable the breaker decides on this process's view.
)doc")
      .def(py::init(&make_breaker), py::arg("redis") = py::none(), py::arg("job_type") = py::none(),
           py::arg("failure_threshold") = 10, py::arg("time_window_minutes") = py::none(),
           py::arg("alert_hooks") = py::none())
      .def(
          "can_retry", [](PyBreaker& self) { return permission_tuple(ask(self)); },
          "(allowed, reason): whether a call (or a retry) may be made now; reason\n"
          "says why not, None when allowed. In CLOSED, answered without a round trip.")
      .def(
          "check", [](PyBreaker& self) { return ask(self); },
          "can_retry() as a Permission (state, retry_after, the probe permit).")
      .def(
          "record_success",
          [](PyBreaker& self, py::handle permission) {
            if (permission.is_none()) {
              gil_release release;
              self.breaker->record_success();
              return;
            }
            if (!py::isinstance<Permission>(permission))
              raise_wrong_type("permission", "a prodsafe.Permission or None", permission);
            const Permission held = permission.cast<Permission>();
            gil_release release;
            self.breaker->record_success(held);
          },
          py::arg("permission") = py::none(),
          "Records a call's success (with the probe permit can_retry() last granted\n"
          "on this thread, or `permission`'s). Never raises.")
      .def(
          "record_failure",
          [](PyBreaker& self, py::handle permission) {
            if (permission.is_none()) {
              gil_release release;
              self.breaker->record_failure();
              return;
            }
            if (!py::isinstance<Permission>(permission))
              raise_wrong_type("permission", "a prodsafe.Permission or None", permission);
            const Permission held = permission.cast<Permission>();
            gil_release release;
            self.breaker->record_failure(held);
          },
          py::arg("permission") = py::none(),
          "Records a call's failure; opens the breaker at the threshold (and fires\n"
          "the alert hooks). Never raises.")
      .def_property_readonly(
          "state",
          [](PyBreaker& self) {
            State state = State::kClosed;
            {
              gil_release release;
              state = self.breaker->state();
            }
            return state_of(state);
          },
          "The state as the store has it (a round trip), or this process's view\n"
          "when the store is unreachable: a CircuitState.")
      .def(
          "force_open",
          [](PyBreaker& self, py::handle actor) {
            const std::string who = actor.is_none() ? std::string() : str_arg(actor, "actor");
            gil_release release;
            self.breaker->force_open(who);
          },
          py::arg("actor") = py::none(),
          "FORCED_OPEN fleet-wide until force_close() or reset(). Raises\n"
          "StoreUnavailable when the store is unreachable."
          "\n\nactor: who is recorded as forcing it (the dashboard's and `prodsafe\n"
          "breaker list`'s \"forced by\"), up to 256 bytes; default: this process's\n"
          "host:pid.")
      .def(
          "force_close",
          [](PyBreaker& self, py::handle actor) {
            const std::string who = actor.is_none() ? std::string() : str_arg(actor, "actor");
            gil_release release;
            self.breaker->force_close(who);
          },
          py::arg("actor") = py::none(),
          "CLOSED fleet-wide, the window emptied."
          "\n\nactor: who is recorded as forcing it (the dashboard's and `prodsafe\n"
          "breaker list`'s \"forced by\"), up to 256 bytes; default: this process's\n"
          "host:pid.")
      .def(
          "disable",
          [](PyBreaker& self, py::handle actor) {
            const std::string who = actor.is_none() ? std::string() : str_arg(actor, "actor");
            gil_release release;
            self.breaker->disable(who);
          },
          py::arg("actor") = py::none(),
          "DISABLED fleet-wide: every call is allowed until force_close() or reset()."
          "\n\nactor: who is recorded as forcing it (the dashboard's and `prodsafe\n"
          "breaker list`'s \"forced by\"), up to 256 bytes; default: this process's\n"
          "host:pid.")
      .def(
          "reset",
          [](PyBreaker& self) {
            gil_release release;
            self.breaker->reset();
          },
          "CLOSED fleet-wide with no history (window and trips cleared).")
      .def(
          "snapshot",
          [](PyBreaker& self) {
            breaker::Snapshot snapshot;
            {
              gil_release release;
              snapshot = self.store->read(self.breaker->job_type(), self.options.rules());
            }
            py::dict out;
            out["state"] = state_of(snapshot.state);
            out["failures"] = snapshot.failures;
            out["successes"] = snapshot.successes;
            out["trips"] = snapshot.trips;
            out["retry_after"] = seconds_of(snapshot.retry_after);
            out["forced_by"] = snapshot.forced_by.empty()
                                   ? py::object(py::none())
                                   : py::object(py::bytes(snapshot.forced_by)
                                                    .attr("decode")("utf-8", "backslashreplace"));
            out["forced_at"] = snapshot.forced_by.empty()
                                   ? py::object(py::none())
                                   : py::object(py::float_(
                                         static_cast<double>(snapshot.forced_at.count()) / 1000.0));
            return out;
          },
          "The store's view (one round trip): state, failures and successes in the\n"
          "window, trips (consecutive openings), retry_after (seconds of break left),\n"
          "forced_by and forced_at (who forced the state and when, a Unix time; None\n"
          "when nothing forced holds).\n"
          "Raises StoreUnavailable when the store is unreachable.")
      .def_property_readonly("job_type",
                             [](const PyBreaker& self) { return self.breaker->job_type(); })
      .def_property_readonly("failure_threshold",
                             [](const PyBreaker& self) { return self.options.failure_threshold; })
      .def_property_readonly(
          "time_window", [](const PyBreaker& self) { return seconds_of(self.options.time_window); },
          "The window, in seconds.")
      .def_property_readonly(
          "store_operations",
          [](const PyBreaker& self) { return self.breaker->store_operations(); },
          "Store operations made (can_retry()'s local answers make none).")
      .def_property_readonly(
          "store_unavailable",
          [](const PyBreaker& self) { return self.breaker->store_unavailable(); },
          "True while the store is unreachable and this process decides alone.")
      .def("__repr__", [](const PyBreaker& self) {
        return "prodsafe.CircuitBreaker('" + self.breaker->job_type() + "')";
      });
}

}  // namespace prodsafe::python
