// prodsafe.metrics: the cardinality guard (the seed's MetricsCardinalityGuard
// and validate_metric_labels), the Registry of counters, gauges and
// histograms, MetricsServer and the StatsD client and exporter
// (include/prodsafe/metrics/).
//
// validate_metric_labels is a plain CPython METH_FASTCALL function, not a
// pybind11 one: it is called on every metric emission, so the dict of labels
// is read in place (PyDict_Next, the str objects' cached UTF-8) without
// pybind11's argument dispatch or any copy.
#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "prodsafe/metrics/build_info.hpp"
#include "prodsafe/metrics/cardinality_guard.hpp"
#include "prodsafe/metrics/metrics_server.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/metrics/statsd.hpp"
#include "prodsafe/metrics/text_serializer.hpp"

namespace prodsafe::python {
namespace {

using metrics::Counter;
using metrics::Family;
using metrics::Gauge;
using metrics::Histogram;
using metrics::Label;
using metrics::MetricsCardinalityGuard;
using metrics::Registry;
using metrics::ValidationResult;
using metrics::Violation;
using metrics::ViolationKind;

// The UTF-8 of a str, borrowed from the object (CPython caches it there).
// Sets a Python error and returns false for anything else.
bool utf8_view(PyObject* object, const char* what, std::string_view& out) {
  if (PyUnicode_Check(object) == 0) {
    raise_wrong_type(what, "a str", object);  // throws
  }
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(object, &size);
  if (data == nullptr) {
    PyErr_Clear();
    raise_python(
        InvalidArgument(std::string(what) + " is not encodable as UTF-8 (a lone surrogate)"));
  }
  out = std::string_view(data, static_cast<std::size_t>(size));
  return true;
}

// The (name, value) views of a dict of str to str, sorted by name (as the
// C++ std::map overload gives them, so that a label set is the same set in
// any insertion order). Views borrow from the dict's str objects: use them
// while the dict is alive and unchanged (no Python code runs meanwhile).
void labels_from_dict(PyObject* dict, std::vector<Label>& out) {
  out.clear();
  if (PyDict_Check(dict) == 0) raise_wrong_type("labels", "a dict of str to str", dict);
  Py_ssize_t position = 0;
  PyObject* key = nullptr;
  PyObject* value = nullptr;
  while (PyDict_Next(dict, &position, &key, &value) != 0) {
    std::string_view name;
    std::string_view text;
    utf8_view(key, "a label name", name);
    if (PyUnicode_Check(value) == 0) {
      raise_wrong_type("the value of label '" + std::string(name) + "'", "a str", value);
    }
    utf8_view(value, "a label value", text);
    out.emplace_back(name, text);
  }
  // Insertion sort: label sets are small.
  for (std::size_t i = 1; i < out.size(); ++i) {
    for (std::size_t j = i; j > 0 && out[j].first < out[j - 1].first; --j)
      std::swap(out[j], out[j - 1]);
  }
}

// The buffer labels_from_dict fills: one for the process, as the GIL is held
// from filling it to the guard's answer (no Python code runs in between).
std::vector<Label>& label_buffer() {
  static std::vector<Label> buffer;
  return buffer;
}

// Label sets the global guard has accepted, by a 64-bit digest of the metric
// name and its labels built from the str objects' own cached hashes (no byte
// of a name or value is read again). The guard answers an accepted set the
// same way forever ("asking again gives the same answer without counting"),
// so validate_metric_labels answers a digest found here without asking it.
// Open addressing, at most half full; once full, further sets are simply not
// cached. Guarded by the GIL.
class AcceptedSets {
 public:
  [[nodiscard]] bool contains(std::uint64_t digest) const noexcept {
    if (slots_.empty()) return false;
    for (std::size_t i = digest & kMask;; i = (i + 1) & kMask) {
      if (slots_[i] == digest) return true;
      if (slots_[i] == 0) return false;
    }
  }
  void insert(std::uint64_t digest) {
    if (used_ >= kSlots / 2) return;
    if (slots_.empty()) slots_.assign(kSlots, 0);
    for (std::size_t i = digest & kMask;; i = (i + 1) & kMask) {
      if (slots_[i] == digest) return;
      if (slots_[i] == 0) {
        slots_[i] = digest;
        ++used_;
        return;
      }
    }
  }

 private:
  static constexpr std::size_t kSlots = std::size_t{1} << 16;
  static constexpr std::size_t kMask = kSlots - 1;
  std::vector<std::uint64_t> slots_;
  std::size_t used_ = 0;
};

AcceptedSets& accepted_sets() {
  static AcceptedSets sets;
  return sets;
}

constexpr std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// The digest of (metric, labels) when the metric and every label name and
// value are exact str objects, else 0 (not cacheable). Order-independent, as
// the label set is.
std::uint64_t digest_of(PyObject* metric, PyObject* labels) {
  if (PyUnicode_CheckExact(metric) == 0 || PyDict_Check(labels) == 0) return 0;
  const Py_hash_t metric_hash = PyObject_Hash(metric);
  if (metric_hash == -1) {
    PyErr_Clear();
    return 0;
  }
  std::uint64_t sum = 0;
  Py_ssize_t position = 0;
  PyObject* key = nullptr;
  PyObject* value = nullptr;
  while (PyDict_Next(labels, &position, &key, &value) != 0) {
    if (PyUnicode_CheckExact(key) == 0 || PyUnicode_CheckExact(value) == 0) return 0;
    const Py_hash_t key_hash = PyObject_Hash(key);
    const Py_hash_t value_hash = PyObject_Hash(value);
    if (key_hash == -1 || value_hash == -1) {
      PyErr_Clear();
      return 0;
    }
    sum += mix(static_cast<std::uint64_t>(key_hash) * 0x9E3779B97F4A7C15ULL ^
               mix(static_cast<std::uint64_t>(value_hash)));
  }
  const std::uint64_t digest = mix(sum ^ mix(static_cast<std::uint64_t>(metric_hash) +
                                             static_cast<std::uint64_t>(PyDict_GET_SIZE(labels))));
  return digest == 0 ? 1 : digest;
}

// Sets the Python error for a C++ exception caught in a raw CPython function.
void set_python_error(const std::exception_ptr& pending) {
  try {
    std::rethrow_exception(pending);
  } catch (py::error_already_set& error) {
    error.restore();
  } catch (const Error& error) {
    py::object exception = python_error(error);
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exception.ptr())), exception.ptr());
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_RuntimeError, error.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception");
  }
}

// validate_metric_labels(metric_name, labels) -> bool.
PyObject* validate_metric_labels_fast(PyObject* /*self*/, PyObject* const* args, Py_ssize_t nargs,
                                      PyObject* kwnames) {
  try {
    PyObject* metric = nargs > 0 ? args[0] : nullptr;
    PyObject* labels = nargs > 1 ? args[1] : nullptr;
    if (nargs > 2) raise_python(InvalidArgument("validate_metric_labels takes 2 arguments"));
    if (kwnames != nullptr) {
      const Py_ssize_t count = PyTuple_GET_SIZE(kwnames);
      for (Py_ssize_t i = 0; i < count; ++i) {
        const std::string name = str_arg(PyTuple_GET_ITEM(kwnames, i), "an argument name");
        PyObject* value = args[nargs + i];
        if (name == "metric_name" && metric == nullptr) {
          metric = value;
        } else if (name == "labels" && labels == nullptr) {
          labels = value;
        } else {
          raise_python(
              InvalidArgument("validate_metric_labels got an unexpected or repeated "
                              "argument '" +
                              name + "'"));
        }
      }
    }
    if (metric == nullptr || labels == nullptr)
      raise_python(InvalidArgument("validate_metric_labels needs metric_name and labels"));
    const std::uint64_t digest = digest_of(metric, labels);
    if (digest != 0 && accepted_sets().contains(digest)) Py_RETURN_TRUE;
    std::string_view name;
    utf8_view(metric, "metric_name", name);
    std::vector<Label>& buffer = label_buffer();
    labels_from_dict(labels, buffer);
    const bool valid =
        metrics::global_guard()
            .validate_labels(name, std::span<const Label>(buffer.data(), buffer.size()))
            .is_valid;
    if (valid && digest != 0) accepted_sets().insert(digest);
    if (valid) Py_RETURN_TRUE;
    Py_RETURN_FALSE;
  } catch (...) {
    set_python_error(std::current_exception());
    return nullptr;
  }
}

PyMethodDef validate_metric_labels_def = {
    "validate_metric_labels",
    reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&validate_metric_labels_fast)),
    METH_FASTCALL | METH_KEYWORDS,
    "validate_metric_labels($module, /, metric_name, labels)\n--\n\n"
    "The seed's global guard: whether `labels` (a dict of str to str) are fit for\n"
    "`metric_name` under the process-wide MetricsCardinalityGuard (warning mode):\n"
    "no forbidden label name (job_id, order_id, ..., *_id, *_uuid, *_guid,\n"
    "*timestamp*), valid Prometheus names, and the metric under its label-set\n"
    "limit. Raises WrongType for a labels argument that is not a dict of str."};

std::string_view kind_name(ViolationKind kind) {
  switch (kind) {
    case ViolationKind::kForbiddenLabel:
      return "FORBIDDEN_LABEL";
    case ViolationKind::kInvalidName:
      return "INVALID_NAME";
    case ViolationKind::kCardinalityLimit:
      return "CARDINALITY_LIMIT";
    case ViolationKind::kUnboundedValue:
      return "UNBOUNDED_VALUE";
  }
  return "UNKNOWN";
}

py::tuple result_tuple(const ValidationResult& result) {
  py::list violations;
  for (const Violation& violation : result.violations) violations.append(py::cast(violation));
  return py::make_tuple(result.is_valid, violations);
}

std::set<std::string, std::less<>> name_set(py::handle value, std::string_view what) {
  std::set<std::string, std::less<>> names;
  if (value.is_none()) return names;
  if (py::isinstance<py::str>(value) || !py::isinstance<py::iterable>(value))
    raise_wrong_type(what, "an iterable of str", value);
  for (const py::handle name : value) names.insert(str_arg(name, std::string(what) + " item"));
  return names;
}

std::size_t count_arg(py::handle value, std::string_view what, long long low, long long high) {
  const long long number = int_arg(value, what);
  if (number < low || number > high) {
    raise_python(InvalidArgument(std::string(what) + " must be between " + std::to_string(low) +
                                 " and " + std::to_string(high)));
  }
  return static_cast<std::size_t>(number);
}

std::unique_ptr<MetricsCardinalityGuard> make_guard(py::handle strict_mode,
                                                    py::handle max_label_sets,
                                                    py::handle max_metrics, py::handle allowed,
                                                    py::handle extra, py::handle log_interval) {
  metrics::GuardOptions options;
  options.strict_mode = bool_arg(strict_mode, "strict_mode");
  options.max_label_sets = count_arg(max_label_sets, "max_label_sets", 1, 100'000'000);
  options.max_metrics = count_arg(max_metrics, "max_metrics", 1, 100'000'000);
  options.allowed_labels = name_set(allowed, "allowed_labels");
  options.extra_forbidden_labels = name_set(extra, "extra_forbidden_labels");
  options.log_interval = duration_arg(log_interval, "log_interval");
  return std::make_unique<MetricsCardinalityGuard>(std::move(options));
}

// Label values for a family: positional (in the order of its label names) or
// by name, never both.
std::vector<std::string> label_values(const std::vector<std::string>& names, const py::args& args,
                                      const py::kwargs& kwargs) {
  std::vector<std::string> values;
  if (!kwargs.empty()) {
    if (!args.empty())
      raise_python(InvalidArgument("give label values by position or by name, not both"));
    for (const auto& [key, value] : kwargs) {
      const std::string name = str_arg(key, "a label name");
      if (std::find(names.begin(), names.end(), name) == names.end())
        raise_python(InvalidArgument("unknown label '" + name + "'"));
    }
    for (const std::string& name : names) {
      if (!kwargs.contains(name.c_str()))
        raise_python(InvalidArgument("label '" + name + "' has no value"));
      values.push_back(str_arg(kwargs[name.c_str()], "label '" + name + "'"));
    }
    return values;
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string what = i < names.size() ? "label '" + names[i] + "'" : "a label value";
    values.push_back(str_arg(args[i], what));
  }
  return values;
}

template <class Series>
Series& series_of(Family<Series>& family, const py::args& args, const py::kwargs& kwargs) {
  const std::vector<std::string> values = label_values(family.label_names(), args, kwargs);
  const std::vector<std::string_view> views(values.begin(), values.end());
  return family.labels(std::span<const std::string_view>(views.data(), views.size()));
}

double amount_arg(py::handle value, std::string_view what, bool allow_negative) {
  const double amount = float_arg(value, what);
  if (!std::isfinite(amount) || (!allow_negative && amount < 0)) {
    raise_python(InvalidArgument(std::string(what) + " must be a finite" +
                                 (allow_negative ? "" : ", non-negative") + " number"));
  }
  return amount;
}

std::vector<std::string> names_arg(py::handle value, std::string_view what) {
  std::vector<std::string> names;
  if (value.is_none()) return names;
  if (py::isinstance<py::str>(value) || !py::isinstance<py::iterable>(value))
    raise_wrong_type(what, "a list of str", value);
  for (const py::handle name : value) names.push_back(str_arg(name, std::string(what) + " item"));
  return names;
}

std::string_view type_name(metrics::MetricType type) {
  switch (type) {
    case metrics::MetricType::kCounter:
      return "counter";
    case metrics::MetricType::kGauge:
      return "gauge";
    case metrics::MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

py::list collect_list(const Registry& registry) {
  std::vector<metrics::MetricFamily> families;
  {
    gil_release release;
    families = registry.collect();
  }
  py::list out;
  for (const metrics::MetricFamily& family : families) {
    py::dict item;
    item["name"] = family.name;
    item["help"] = family.help;
    item["type"] = std::string(type_name(family.type));
    item["label_names"] = family.label_names;
    py::list samples;
    for (const metrics::Sample& sample : family.samples) {
      py::dict entry;
      py::dict labels;
      for (std::size_t i = 0; i < family.label_names.size() && i < sample.label_values.size(); ++i)
        labels[py::str(family.label_names[i])] = sample.label_values[i];
      entry["labels"] = labels;
      if (family.type == metrics::MetricType::kHistogram) {
        entry["bounds"] = sample.histogram.bounds;
        entry["counts"] = sample.histogram.counts;
        entry["sum"] = sample.histogram.sum;
        entry["count"] = sample.histogram.count;
      } else {
        entry["value"] = sample.value;
      }
      samples.append(entry);
    }
    item["samples"] = samples;
    out.append(item);
  }
  return out;
}

template <class Series>
void bind_family_common(py::class_<Family<Series>>& family) {
  family.def_property_readonly("name", &Family<Series>::name)
      .def_property_readonly("help", &Family<Series>::help)
      .def_property_readonly("label_names", &Family<Series>::label_names)
      .def("__len__", &Family<Series>::size, "The number of series (label sets) it has.")
      .def_property_readonly("overflowed", &Family<Series>::overflowed,
                             "Label sets sent to the overflow series (past the limit).")
      .def(
          "labels",
          [](Family<Series>& self, const py::args& args, const py::kwargs& kwargs) -> Series& {
            return series_of(self, args, kwargs);
          },
          py::return_value_policy::reference_internal,
          "The series for these label values: labels(\"BTCUSDT\", \"buy\") in the order\n"
          "of label_names, or labels(symbol=\"BTCUSDT\", side=\"buy\"). A label set past\n"
          "the metric's limit gets the overflow series (every label \"__overflow__\").");
}

// A MetricsServer that start() makes and stop() ends, with its registry kept
// alive. `server` is only set and cleared with the GIL held (which makes
// start, stop and the properties safe from several threads); the server is
// made and destroyed without it.
struct Server {
  py::object registry_ref;
  Registry* registry = nullptr;
  metrics::MetricsServerOptions options;
  std::shared_ptr<metrics::MetricsServer> server;

  void start() {
    if (server) return;
    std::shared_ptr<metrics::MetricsServer> made;
    {
      gil_release release;
      made = std::make_shared<metrics::MetricsServer>(*registry, options);
    }
    if (server) {  // another thread started it meanwhile
      gil_release release;
      made.reset();
      return;
    }
    server = std::move(made);
  }
  void stop() {
    std::shared_ptr<metrics::MetricsServer> taken = std::move(server);
    if (!taken) return;
    gil_release release;
    taken.reset();
  }
  Server() = default;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server() { stop(); }
};

Registry& registry_arg(py::handle value, py::object& keep) {
  if (value.is_none()) return metrics::default_registry();
  if (!py::isinstance<Registry>(value)) raise_wrong_type("registry", "a prodsafe.Registry", value);
  keep = py::reinterpret_borrow<py::object>(value);
  return value.cast<Registry&>();
}

std::unique_ptr<Server> make_server(py::handle registry, py::handle host, py::handle port,
                                    py::handle max_connections, py::handle request_timeout,
                                    py::handle response_timeout, py::handle max_header_bytes) {
  auto made = std::make_unique<Server>();
  made->registry = &registry_arg(registry, made->registry_ref);
  made->options.host = str_arg(host, "host");
  made->options.port = static_cast<int>(count_arg(port, "port", 0, 65535));
  made->options.max_connections = count_arg(max_connections, "max_connections", 1, 10000);
  made->options.request_timeout = duration_arg(request_timeout, "request_timeout");
  made->options.response_timeout = duration_arg(response_timeout, "response_timeout");
  made->options.max_header_bytes = count_arg(max_header_bytes, "max_header_bytes", 256, 1 << 20);
  metrics::validate_options(made->options);
  return made;
}

// StatsD: the client and the exporter, each with what it refers to kept
// alive. The shared pointers are only set and cleared with the GIL held; a
// call that releases the GIL (flush, export_now) holds its own copy, so a
// close() from another thread meanwhile cannot free what it uses.
struct Statsd {
  py::object guard_ref;
  std::shared_ptr<metrics::StatsdClient> client;
  // Open StatsdExporters pushing through this client: it cannot close before them.
  int exporters = 0;

  std::shared_ptr<metrics::StatsdClient> get() const {
    if (!client) raise_python(InvalidArgument("the StatsdClient is closed"));
    return client;
  }
  void close() {
    if (exporters > 0)
      raise_python(InvalidArgument("close the StatsdExporter using this StatsdClient first"));
    release_client();
  }
  void release_client() {
    std::shared_ptr<metrics::StatsdClient> taken = std::move(client);
    if (!taken) return;
    gil_release release;
    taken.reset();  // stops the flush thread and sends what is buffered
  }
  Statsd() = default;
  Statsd(const Statsd&) = delete;
  Statsd& operator=(const Statsd&) = delete;
  // No exporter is open: each holds a reference to this object.
  ~Statsd() { release_client(); }
};

// An exporter and the client it pushes through, destroyed in that order.
struct ExporterParts {
  std::shared_ptr<metrics::StatsdClient> client;
  std::unique_ptr<metrics::StatsdExporter> exporter;
  ExporterParts(std::shared_ptr<metrics::StatsdClient> sink, const Registry& source,
                metrics::StatsdExporterOptions options)
      : client(std::move(sink)),
        exporter(std::make_unique<metrics::StatsdExporter>(source, *client, options)) {}
  ExporterParts(const ExporterParts&) = delete;
  ExporterParts& operator=(const ExporterParts&) = delete;
  ~ExporterParts() { exporter.reset(); }
};

struct Exporter {
  py::object registry_ref;
  py::object client_ref;
  std::shared_ptr<ExporterParts> parts;

  void close() {
    std::shared_ptr<ExporterParts> taken = std::move(parts);
    if (!taken) return;
    client_ref.cast<Statsd&>().exporters -= 1;
    gil_release release;
    taken.reset();  // pushes a last time
  }
  Exporter() = default;
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;
  ~Exporter() { close(); }
};

// StatsD tags: a dict of str to str, or None.
std::vector<std::pair<std::string, std::string>> tags_arg(py::handle value, std::string_view what) {
  std::vector<std::pair<std::string, std::string>> tags;
  if (value.is_none()) return tags;
  if (!py::isinstance<py::dict>(value)) raise_wrong_type(what, "a dict of str to str", value);
  for (const auto& [key, item] : value.cast<py::dict>()) {
    std::string name = str_arg(key, std::string(what) + " name");
    tags.emplace_back(name, str_arg(item, std::string(what) + "[\"" + name + "\"]"));
  }
  return tags;
}

std::unique_ptr<Statsd> make_statsd(py::handle host, py::handle port, py::handle prefix,
                                    py::handle flavour, py::handle constant_tags,
                                    py::handle max_packet_bytes, py::handle flush_interval,
                                    py::handle guard) {
  metrics::StatsdOptions options;
  options.host = str_arg(host, "host");
  options.port = static_cast<int>(count_arg(port, "port", 1, 65535));
  options.prefix = str_arg(prefix, "prefix");
  const std::string kind = str_arg(flavour, "flavour");
  if (kind == "dogstatsd") {
    options.flavour = metrics::StatsdFlavour::kDogStatsd;
  } else if (kind == "statsd") {
    options.flavour = metrics::StatsdFlavour::kStatsd;
  } else {
    raise_python(
        InvalidArgument("flavour must be \"dogstatsd\" or \"statsd\", not \"" + kind + "\""));
  }
  options.constant_tags = tags_arg(constant_tags, "constant_tags");
  options.max_packet_bytes = count_arg(max_packet_bytes, "max_packet_bytes", 64, 65507);
  options.flush_interval = duration_arg(flush_interval, "flush_interval");
  auto made = std::make_unique<Statsd>();
  if (!guard.is_none()) {
    if (!py::isinstance<MetricsCardinalityGuard>(guard))
      raise_wrong_type("guard", "a prodsafe.MetricsCardinalityGuard or None", guard);
    options.guard = &guard.cast<MetricsCardinalityGuard&>();
    made->guard_ref = py::reinterpret_borrow<py::object>(guard);
  }
  {
    gil_release release;
    made->client = std::make_unique<metrics::StatsdClient>(std::move(options));
  }
  return made;
}

double rate_arg(py::handle value) {
  const double rate = float_arg(value, "sample_rate");
  if (!(rate > 0.0 && rate <= 1.0)) raise_python(InvalidArgument("sample_rate must be in (0, 1]"));
  return rate;
}

// Sends one StatsD metric: `send(client, name, value, tags, rate)`.
template <class Send>
auto statsd_method(Send send) {
  return [send](Statsd& self, py::handle name, py::handle value, py::handle tags,
                py::handle sample_rate) {
    const std::string metric = str_arg(name, "name");
    const double number = float_arg(value, "value");
    const auto pairs = tags_arg(tags, "tags");
    const double rate = rate_arg(sample_rate);
    std::vector<Label> views;
    views.reserve(pairs.size());
    for (const auto& [tag, text] : pairs) views.emplace_back(tag, text);
    const std::shared_ptr<metrics::StatsdClient> client = self.get();
    send(*client, metric, number, std::span<const Label>(views.data(), views.size()), rate);
  };
}

}  // namespace

void bind_metrics(py::module_& m) {
  py::enum_<ViolationKind>(m, "ViolationKind", "What a label Violation is about.")
      .value("FORBIDDEN_LABEL", ViolationKind::kForbiddenLabel)
      .value("INVALID_NAME", ViolationKind::kInvalidName)
      .value("CARDINALITY_LIMIT", ViolationKind::kCardinalityLimit)
      .value("UNBOUNDED_VALUE", ViolationKind::kUnboundedValue);

  py::class_<Violation>(m, "Violation", R"doc(
One finding of MetricsCardinalityGuard.validate_labels: kind (ViolationKind),
error (False for a warning, which leaves the labels valid), label (the label
name; empty for the metric itself) and message. str() gives the message.
)doc")
      .def_readonly("kind", &Violation::kind)
      .def_readonly("error", &Violation::error)
      .def_readonly("label", &Violation::label)
      .def_readonly("message", &Violation::message)
      .def("__str__", [](const Violation& violation) { return violation.message; })
      .def("__repr__", [](const Violation& violation) {
        return "Violation(" + std::string(kind_name(violation.kind)) + ", " +
               (violation.label.empty() ? "" : "label=" + violation.label + ", ") +
               (violation.error ? "error" : "warning") + ")";
      });

  py::class_<MetricsCardinalityGuard>(m, "MetricsCardinalityGuard", R"doc(
Keeps metric labels from exploding a Prometheus (the seed's guard).

    MetricsCardinalityGuard(strict_mode=False, max_label_sets=2000,
                            max_metrics=10000, allowed_labels=(),
                            extra_forbidden_labels=(), log_interval=60)

Errors: a forbidden label name (job_id, order_id, trade_id, user_id, ...,
or one matching *_id, *_uuid, *_guid, *timestamp*, unless in
allowed_labels), a metric or label name Prometheus refuses, or a new label
set past the metric's max_label_sets. Warnings (the labels stay valid):
values that look unbounded (UUIDs, long numbers, timestamps). In strict mode
an error raises CardinalityViolation; otherwise it is logged, at most once a
log_interval per metric. Safe to share between threads.
)doc")
      .def(py::init(&make_guard), py::arg("strict_mode") = false, py::arg("max_label_sets") = 2000,
           py::arg("max_metrics") = 10000, py::arg("allowed_labels") = py::none(),
           py::arg("extra_forbidden_labels") = py::none(), py::arg("log_interval") = 60)
      .def(
          "validate_labels",
          [](MetricsCardinalityGuard& guard, py::handle metric_name, py::handle labels) {
            std::string_view name;
            utf8_view(metric_name.ptr(), "metric_name", name);
            std::vector<Label>& buffer = label_buffer();
            labels_from_dict(labels.ptr(), buffer);
            return result_tuple(
                guard.validate_labels(name, std::span<const Label>(buffer.data(), buffer.size())));
          },
          py::arg("metric_name"), py::arg("labels"),
          "(is_valid, violations) for a dict of str labels on metric_name; raises\n"
          "CardinalityViolation on an error in strict mode.")
      .def(
          "is_forbidden_label",
          [](const MetricsCardinalityGuard& guard, py::handle name) {
            return guard.is_forbidden_label(str_arg(name, "name"));
          },
          py::arg("name"))
      .def(
          "label_sets",
          [](const MetricsCardinalityGuard& guard, py::handle metric_name) {
            return guard.label_sets(str_arg(metric_name, "metric_name"));
          },
          py::arg("metric_name"), "Label sets seen for the metric (at most max_label_sets).")
      .def_property_readonly("errors", &MetricsCardinalityGuard::errors,
                             "Validations that found at least one error.")
      .def_property_readonly("warnings", &MetricsCardinalityGuard::warnings,
                             "Validations that found only warnings.")
      .def_property_readonly("strict_mode", [](const MetricsCardinalityGuard& guard) {
        return guard.options().strict_mode;
      });

  m.def("global_guard", &metrics::global_guard, py::return_value_policy::reference,
        "The process-wide guard validate_metric_labels uses (warning mode).");
  m.def(
      "looks_unbounded",
      [](py::handle value) { return metrics::looks_unbounded(str_arg(value, "value")); },
      py::arg("value"),
      "Whether a label value looks unbounded: a UUID, 16+ hex digits, 10+ digits, an\n"
      "ISO-8601 timestamp.");
  m.add_object("validate_metric_labels",
               py::reinterpret_steal<py::object>(PyCFunction_NewEx(
                   &validate_metric_labels_def, m.ptr(), m.attr("__name__").ptr())));

  py::class_<Counter>(m, "Counter", "One counter series (from CounterFamily.labels()).")
      .def(
          "inc",
          [](Counter& counter, py::handle amount) {
            counter.inc(amount_arg(amount, "amount", false));
          },
          py::arg("amount") = 1.0, "Adds amount (finite, >= 0; default 1).")
      .def_property_readonly("value", &Counter::value);
  py::class_<Gauge>(m, "Gauge", "One gauge series (from GaugeFamily.labels()).")
      .def(
          "set",
          [](Gauge& gauge, py::handle value) { gauge.set(amount_arg(value, "value", true)); },
          py::arg("value"))
      .def(
          "inc",
          [](Gauge& gauge, py::handle amount) { gauge.inc(amount_arg(amount, "amount", true)); },
          py::arg("amount") = 1.0)
      .def(
          "dec",
          [](Gauge& gauge, py::handle amount) { gauge.dec(amount_arg(amount, "amount", true)); },
          py::arg("amount") = 1.0)
      .def_property_readonly("value", &Gauge::value);
  py::class_<Histogram>(m, "Histogram", "One histogram series (from HistogramFamily.labels()).")
      .def(
          "observe",
          [](Histogram& histogram, py::handle value) {
            histogram.observe(amount_arg(value, "value", true));
          },
          py::arg("value"), "Records one observation (a finite number).")
      .def_property_readonly("bounds", &Histogram::bounds)
      .def_property_readonly("counts", &Histogram::counts,
                             "Per-bucket (not cumulative) counts; the last is +Inf's.")
      .def_property_readonly("sum", &Histogram::sum)
      .def_property_readonly("count", &Histogram::count);

  py::class_<Family<Counter>> counters(m, "CounterFamily",
                                       "A counter metric: one Counter per label set.");
  bind_family_common(counters);
  counters.def(
      "inc",
      [](Family<Counter>& family, py::handle amount) {
        family.labels(std::span<const std::string_view>()).inc(amount_arg(amount, "amount", false));
      },
      py::arg("amount") = 1.0, "inc() on the series of a metric without labels.");
  py::class_<Family<Gauge>> gauges(m, "GaugeFamily", "A gauge metric: one Gauge per label set.");
  bind_family_common(gauges);
  gauges.def(
      "set",
      [](Family<Gauge>& family, py::handle value) {
        family.labels(std::span<const std::string_view>()).set(amount_arg(value, "value", true));
      },
      py::arg("value"), "set() on the series of a metric without labels.");
  py::class_<Family<Histogram>> histograms(m, "HistogramFamily",
                                           "A histogram metric: one Histogram per label set.");
  bind_family_common(histograms);
  histograms.def(
      "observe",
      [](Family<Histogram>& family, py::handle value) {
        family.labels(std::span<const std::string_view>())
            .observe(amount_arg(value, "value", true));
      },
      py::arg("value"), "observe() on the series of a metric without labels.");

  py::class_<Registry>(m, "Registry", R"doc(
Counters, gauges and histograms with labels, written in the Prometheus text
format by serialize() (what MetricsServer serves).

    Registry(guard=None)

Every new label set passes the guard (default: the global one); a label set
past a metric's limit goes to its overflow series (every label
"__overflow__"), so memory stays bounded. Asking again for a metric with the
same type, help and label names returns the same family; anything that
would make the page unparseable raises InvalidArgument. Thread-safe.
)doc")
      .def(py::init([](py::handle guard) {
             if (guard.is_none()) return std::make_unique<Registry>();
             if (!py::isinstance<MetricsCardinalityGuard>(guard))
               raise_wrong_type("guard", "a prodsafe.MetricsCardinalityGuard or None", guard);
             return std::make_unique<Registry>(&guard.cast<MetricsCardinalityGuard&>());
           }),
           py::arg("guard") = py::none(), py::keep_alive<1, 2>())
      .def(
          "counter",
          [](Registry& registry, py::handle name, py::handle help,
             py::handle label_names) -> Family<Counter>& {
            return registry.counter(str_arg(name, "name"), str_arg(help, "help"),
                                    names_arg(label_names, "label_names"));
          },
          py::arg("name"), py::arg("help"), py::arg("label_names") = py::none(),
          py::return_value_policy::reference_internal)
      .def(
          "gauge",
          [](Registry& registry, py::handle name, py::handle help,
             py::handle label_names) -> Family<Gauge>& {
            return registry.gauge(str_arg(name, "name"), str_arg(help, "help"),
                                  names_arg(label_names, "label_names"));
          },
          py::arg("name"), py::arg("help"), py::arg("label_names") = py::none(),
          py::return_value_policy::reference_internal)
      .def(
          "histogram",
          [](Registry& registry, py::handle name, py::handle help, py::handle label_names,
             py::handle bounds) -> Family<Histogram>& {
            std::vector<double> limits = metrics::default_latency_bounds();
            if (!bounds.is_none()) {
              if (!py::isinstance<py::iterable>(bounds))
                raise_wrong_type("bounds", "a list of numbers", bounds);
              limits.clear();
              for (const py::handle bound : bounds) limits.push_back(float_arg(bound, "a bound"));
            }
            return registry.histogram(str_arg(name, "name"), str_arg(help, "help"),
                                      names_arg(label_names, "label_names"), std::move(limits));
          },
          py::arg("name"), py::arg("help"), py::arg("label_names") = py::none(),
          py::arg("bounds") = py::none(), py::return_value_policy::reference_internal,
          "bounds: the buckets' upper bounds, strictly increasing (+Inf is implied);\n"
          "default 0.5 ms to 10 s, in seconds.")
      .def(
          "serialize",
          [](const Registry& registry) {
            std::string text;
            {
              gil_release release;
              text = registry.serialize();
            }
            return text;
          },
          "The Prometheus text format 0.0.4: what MetricsServer serves at /metrics.")
      .def("collect", &collect_list,
           "Every family as a dict (name, help, type, label_names, samples), sorted by name.");

  m.def("default_registry", &metrics::default_registry, py::return_value_policy::reference,
        "The registry prodsafe's own instruments use unless told otherwise.");
  m.def("build_version", [] { return std::string(metrics::build_version()); });

  py::class_<Server>(m, "MetricsServer", R"doc(
Serves a Registry at GET /metrics (Prometheus text format 0.0.4) and
GET /healthz on a thread of its own.

    MetricsServer(registry=None, host="127.0.0.1", port=0, max_connections=64,
                  request_timeout=5.0, response_timeout=10.0,
                  max_header_bytes=8192)

registry: default, the default registry. port 0: a free port (see port once
started). start() listens (IoError when the address cannot be bound),
stop() closes every connection; a with block does both.
)doc")
      .def(py::init(&make_server), py::arg("registry") = py::none(), py::arg("host") = "127.0.0.1",
           py::arg("port") = 0, py::arg("max_connections") = 64, py::arg("request_timeout") = 5.0,
           py::arg("response_timeout") = 10.0, py::arg("max_header_bytes") = 8192)
      .def("start", &Server::start, "Starts listening (does nothing when it is running).")
      .def("stop", &Server::stop, "Stops serving (does nothing when it is not running).")
      .def_property_readonly("running", [](const Server& self) { return self.server != nullptr; })
      .def_property_readonly(
          "port",
          [](const Server& self) -> py::object {
            if (!self.server) return py::none();
            return py::int_(self.server->port());
          },
          "The port it listens on; None when it is not running.")
      .def_property_readonly(
          "url",
          [](const Server& self) -> py::object {
            if (!self.server) return py::none();
            return py::str(self.server->url());
          },
          "http://host:port/metrics; None when it is not running.")
      .def("__enter__",
           [](py::object self) {
             self.cast<Server&>().start();
             return self;
           })
      .def("__exit__", [](Server& self, const py::args&) {
        self.stop();
        return false;
      });

  py::class_<Statsd>(m, "StatsdClient", R"doc(
Pushes metrics over UDP to a StatsD server or a Datadog agent.

    StatsdClient(host="127.0.0.1", port=8125, prefix="", flavour="dogstatsd",
                 constant_tags=None, max_packet_bytes=1432, flush_interval=1.0,
                 guard=None)

flavour: "dogstatsd" (tags as |#k:v) or "statsd" (no tags). Lines are
buffered and sent every flush_interval seconds (0: each metric at once), on
flush() and on close(). Tags pass the guard (default: the global one) as a
Registry's labels do. Sending never blocks and never raises for the network.
)doc")
      .def(py::init(&make_statsd), py::arg("host") = "127.0.0.1", py::arg("port") = 8125,
           py::arg("prefix") = "", py::arg("flavour") = "dogstatsd",
           py::arg("constant_tags") = py::none(), py::arg("max_packet_bytes") = 1432,
           py::arg("flush_interval") = 1.0, py::arg("guard") = py::none())
      .def("counter",
           statsd_method([](metrics::StatsdClient& c, const std::string& n, double v,
                            std::span<const Label> t, double r) { c.counter(n, v, t, r); }),
           py::arg("name"), py::arg("value") = 1.0, py::arg("tags") = py::none(),
           py::arg("sample_rate") = 1.0)
      .def("gauge",
           statsd_method([](metrics::StatsdClient& c, const std::string& n, double v,
                            std::span<const Label> t, double r) { c.gauge(n, v, t, r); }),
           py::arg("name"), py::arg("value"), py::arg("tags") = py::none(),
           py::arg("sample_rate") = 1.0)
      .def("timing",
           statsd_method([](metrics::StatsdClient& c, const std::string& n, double v,
                            std::span<const Label> t, double r) {
             c.timing(n, std::chrono::duration<double, std::milli>(v * 1000.0), t, r);
           }),
           py::arg("name"), py::arg("seconds"), py::arg("tags") = py::none(),
           py::arg("sample_rate") = 1.0, "A duration in seconds, sent in milliseconds (|ms).")
      .def("histogram",
           statsd_method([](metrics::StatsdClient& c, const std::string& n, double v,
                            std::span<const Label> t, double r) { c.histogram(n, v, t, r); }),
           py::arg("name"), py::arg("value"), py::arg("tags") = py::none(),
           py::arg("sample_rate") = 1.0)
      .def("distribution",
           statsd_method([](metrics::StatsdClient& c, const std::string& n, double v,
                            std::span<const Label> t, double r) { c.distribution(n, v, t, r); }),
           py::arg("name"), py::arg("value"), py::arg("tags") = py::none(),
           py::arg("sample_rate") = 1.0)
      .def(
          "flush",
          [](Statsd& self) {
            const std::shared_ptr<metrics::StatsdClient> client = self.get();
            gil_release release;
            client->flush();
          },
          "Sends what is buffered now.")
      .def(
          "close",
          [](Statsd& self) {
            if (self.client) self.close();
          },
          "Stops the flush thread and sends what is still buffered.")
      .def_property_readonly("sent_packets",
                             [](Statsd& self) { return self.get()->sent_packets(); })
      .def_property_readonly("sent_metrics",
                             [](Statsd& self) { return self.get()->sent_metrics(); })
      .def_property_readonly("dropped", [](Statsd& self) { return self.get()->dropped(); })
      .def_property_readonly("send_errors", [](Statsd& self) { return self.get()->send_errors(); })
      .def_property_readonly("overflowed", [](Statsd& self) { return self.get()->overflowed(); })
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Statsd& self, const py::args&) {
        self.close();
        return false;
      });

  py::class_<Exporter>(m, "StatsdExporter", R"doc(
Pushes a Registry through a StatsdClient every interval seconds (0: only on
export_now() and close()): counters as their increase since the last push,
gauges as their value, histograms as count, sum and (dogstatsd) buckets.

    StatsdExporter(registry, client, interval=10.0)
)doc")
      .def(py::init([](py::handle registry, py::handle client, py::handle interval) {
             auto made = std::make_unique<Exporter>();
             Registry& source = registry_arg(registry, made->registry_ref);
             if (!py::isinstance<Statsd>(client))
               raise_wrong_type("client", "a prodsafe.StatsdClient", client);
             made->client_ref = py::reinterpret_borrow<py::object>(client);
             std::shared_ptr<metrics::StatsdClient> sink = client.cast<Statsd&>().get();
             metrics::StatsdExporterOptions options;
             options.interval = duration_arg(interval, "interval");
             {
               gil_release release;
               made->parts = std::make_shared<ExporterParts>(std::move(sink), source, options);
             }
             client.cast<Statsd&>().exporters += 1;
             return made;
           }),
           py::arg("registry"), py::arg("client"), py::arg("interval") = 10.0)
      .def(
          "export_now",
          [](Exporter& self) {
            if (!self.parts) raise_python(InvalidArgument("the StatsdExporter is closed"));
            const std::shared_ptr<ExporterParts> parts = self.parts;
            gil_release release;
            parts->exporter->export_now();
          },
          "Pushes the registry now and flushes the client.")
      .def("close", &Exporter::close, "Stops the thread and pushes a last time.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Exporter& self, const py::args&) {
        self.close();
        return false;
      });
}

}  // namespace prodsafe::python
