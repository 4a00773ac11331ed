// prodsafe.runtime_checks: the Redis production-safety validator
// (runtime_checks/redis_runtime_validator.hpp), the seed's
// RedisRuntimeValidator.
#include <mutex>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/runtime_checks/redis_runtime_validator.hpp"

namespace prodsafe::python {
namespace {

using runtime_checks::CheckResult;
using runtime_checks::Level;
using runtime_checks::RedisRuntimeValidator;
using runtime_checks::ValidatorOptions;

// What to_dict() and get_summary()["results"] give for one result.
py::dict result_dict(const CheckResult& result) {
  py::dict out;
  out["name"] = result.name;
  out["level"] = std::string(runtime_checks::to_string(result.level));
  out["observed"] = result.observed;
  out["expected"] = result.expected;
  out["message"] = result.message;
  out["remediation"] = result.remediation;
  out["node"] = result.node;
  out["node_role"] = result.node_role;
  return out;
}

double fraction_arg(py::handle value, std::string_view what) {
  const double share = float_arg(value, what);
  if (!(share >= 0.0 && share <= 1.0))
    raise_python(InvalidArgument(std::string(what) + " must be a share between 0 and 1"));
  return share;
}

// A ValidationLevel, or its name in any case ("error").
Level level_arg(py::handle value) {
  if (py::isinstance<Level>(value)) return value.cast<Level>();
  if (!py::isinstance<py::str>(value))
    raise_wrong_type("fail_at", "a ValidationLevel or its name", value);
  const std::string name = str_arg(value, "fail_at");
  const auto level = runtime_checks::parse_level(name);
  if (!level)
    raise_python(
        InvalidArgument("fail_at must be OK, WARNING, ERROR or CRITICAL, not '" + name + "'"));
  return *level;
}

// A validator with what its options refer to kept alive (the metrics
// registry, when one is given).
// A RedisRuntimeValidator is not for concurrent use: `mutex` serialises the
// calls (taken with the GIL released, as a run waits on Redis).
struct Validator {
  RedisRuntimeValidator validator;
  py::object registry;
  std::mutex mutex;
};

std::unique_ptr<Validator> make_validator(py::handle redis, const py::kwargs& kwargs) {
  std::shared_ptr<redis::Client> client = client_arg(redis);
  ValidatorOptions options;
  py::object registry = py::none();
  for (const auto& [key, value] : kwargs) {
    const std::string name = str_arg(key, "an option name");
    if (name == "strict_durability") {
      options.strict_durability = bool_arg(value, name);
    } else if (name == "memory_warning_free") {
      options.memory_warning_free = fraction_arg(value, name);
    } else if (name == "memory_error_free") {
      options.memory_error_free = fraction_arg(value, name);
    } else if (name == "memory_critical_free") {
      options.memory_critical_free = fraction_arg(value, name);
    } else if (name == "latency_samples") {
      const long long samples = int_arg(value, name);
      if (samples < 0 || samples > 100000)
        raise_python(InvalidArgument("latency_samples must be between 0 and 100000"));
      options.latency_samples = static_cast<std::size_t>(samples);
    } else if (name == "latency_p99_warning") {
      options.latency_p99_warning =
          std::chrono::duration_cast<std::chrono::microseconds>(duration_arg(value, name));
    } else if (name == "metrics") {
      if (!value.is_none()) {
        if (!py::isinstance<metrics::Registry>(value))
          raise_wrong_type(name, "a prodsafe.Registry or None", value);
        options.metrics = &value.cast<metrics::Registry&>();
        registry = py::reinterpret_borrow<py::object>(value);
      }
    } else {
      raise_python(InvalidArgument(
          "unknown option '" + name +
          "' for RedisRuntimeValidator; the options are strict_durability, memory_warning_free, "
          "memory_error_free, memory_critical_free, latency_samples, latency_p99_warning, "
          "metrics"));
    }
  }
  return std::unique_ptr<Validator>(
      new Validator{RedisRuntimeValidator(std::move(client), options), std::move(registry), {}});
}

py::list results_list(const std::vector<CheckResult>& results) {
  py::list out;
  for (const CheckResult& result : results) out.append(py::cast(result));
  return out;
}

}  // namespace

void bind_checks(py::module_& m) {
  py::enum_<Level>(m, "ValidationLevel", py::arithmetic(),
                   "A check's severity, ordered: OK < WARNING < ERROR < CRITICAL.")
      .value("OK", Level::kOk)
      .value("WARNING", Level::kWarning)
      .value("ERROR", Level::kError)
      .value("CRITICAL", Level::kCritical);

  py::class_<CheckResult>(m, "CheckResult", R"doc(
One finding of RedisRuntimeValidator: name ("persistence", "eviction_policy",
...), level (ValidationLevel), observed (what the server reported), expected
(what is safe), message (the risk), remediation (a command or setting; empty
when OK), node and node_role (the server it is about in a Sentinel or Cluster
topology; empty for a one-server URL).
)doc")
      .def_readonly("name", &CheckResult::name)
      .def_readonly("level", &CheckResult::level)
      .def_readonly("observed", &CheckResult::observed)
      .def_readonly("expected", &CheckResult::expected)
      .def_readonly("message", &CheckResult::message)
      .def_readonly("remediation", &CheckResult::remediation)
      .def_readonly("node", &CheckResult::node)
      .def_readonly("node_role", &CheckResult::node_role)
      .def("to_dict", &result_dict, "The fields as a dict (level as its name, \"OK\" ...).")
      .def("__repr__", [](const CheckResult& result) {
        std::string text = "CheckResult(" + result.name + ", " +
                           std::string(runtime_checks::to_string(result.level));
        if (!result.node.empty()) text += ", node=" + result.node;
        return text + ", " + result.observed + ")";
      });

  py::class_<Validator>(m, "RedisRuntimeValidator", R"doc(
Checks that a Redis server is configured so that prodsafe's records are
neither lost nor evicted: persistence and its health, eviction policy, memory
headroom, role, version, loading state and round-trip latency; for a
redis-sentinel:// or redis-cluster:// connection, the topology and every
node (docs/operations.md lists the checks).

    RedisRuntimeValidator(redis, **options)

redis: a prodsafe.Redis or a redis-py client. Options: strict_durability
(appendfsync everysec is an ERROR, not a WARNING), memory_warning_free,
memory_error_free, memory_critical_free (free shares, 0..1; defaults 0.20,
0.10, 0.05), latency_samples (PINGs timed; 0 skips), latency_p99_warning
(seconds), metrics (a prodsafe.Registry; default: the default registry).
Calls on one validator from several threads run one at a time.
)doc")
      .def(py::init(&make_validator), py::arg("redis"))
      .def(
          "run",
          [](Validator& self) {
            std::vector<CheckResult> results;
            {
              gil_release release;
              const std::lock_guard lock(self.mutex);
              results = self.validator.run();
            }
            return results_list(results);
          },
          "Runs every check and returns every CheckResult, OK ones included. Raises\n"
          "StoreUnavailable when the server cannot be reached at all.")
      .def(
          "validate_on_startup",
          [](Validator& self, py::handle fail_at) {
            const Level level = level_arg(fail_at);
            gil_release release;
            const std::lock_guard lock(self.mutex);
            return self.validator.validate_on_startup(level);
          },
          py::arg("fail_at") = py::cast(Level::kError),
          "Runs the checks, logs each result (through prodsafe's logger) and returns\n"
          "False when any result is at or above fail_at (default ERROR), or when Redis\n"
          "cannot be reached. Never raises.")
      .def(
          "get_summary",
          [](Validator& self) {
            runtime_checks::Summary summary;
            std::vector<CheckResult> results;
            {
              gil_release release;
              const std::lock_guard lock(self.mutex);
              summary = self.validator.get_summary();
              results = self.validator.results();
            }
            py::dict out;
            out["total_checks"] = summary.total_checks;
            out["ok"] = summary.ok;
            out["warning"] = summary.warning;
            out["error"] = summary.error;
            out["critical"] = summary.critical;
            py::list items;
            for (const CheckResult& result : results) items.append(result_dict(result));
            out["results"] = items;
            return out;
          },
          "The last run's counts: {'total_checks', 'ok', 'warning', 'error', 'critical',\n"
          "'results' (each result as a dict)}. Runs the checks first if none ran.")
      .def_property_readonly(
          "results",
          [](Validator& self) {
            std::vector<CheckResult> results;
            {
              gil_release release;
              const std::lock_guard lock(self.mutex);
              results = self.validator.results();
            }
            return results_list(results);
          },
          "The CheckResults of the last run (empty before the first).");
}

}  // namespace prodsafe::python
