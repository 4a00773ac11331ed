// prodsafe.idempotency: SideEffectWrapper, EffectType, EffectContext,
// Outcome, InMemoryEffectStore and the order identity behind
// ExecutionGuardAdapter (docs/python.md). The decorator, the async form and
// the seed's module-level wrap_* functions are Python (prodsafe/idempotency.py).
//
// Results: a Python effect's result is converted to nlohmann::json with the
// GIL held, and stored as json::dump() writes it, so the bytes are the ones a
// C++ worker's nlohmann::json result stores and the two interoperate (a C++
// std::string result is stored as is, not as JSON: a Python caller gets
// DecodeError for it). A value
// JSON cannot hold (a set, NaN, an object, an int beyond 64 bits, a dict key
// that is not a str) is not an error of the effect: the effect HAS run, so
// the result is recorded as unavailable (Outcome.result_unavailable; later
// calls get ResultUnavailable), as the C++ wrapper does when a codec throws.
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bindings.hpp"
#include "prodsafe/idempotency/effect_type.hpp"
#include "prodsafe/idempotency/execution_guard_adapter.hpp"
#include "prodsafe/idempotency/in_memory_effect_store.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"

namespace prodsafe::python {

// A Python effect's result as JSON, or why it has none (error set). The
// codec below throws EncodeError for the latter, which the wrapper turns into
// a result_unavailable record.
struct JsonResult {
  nlohmann::json value{};
  std::string error{};
};

}  // namespace prodsafe::python

template <>
struct prodsafe::idempotency::Codec<prodsafe::python::JsonResult> {
  static std::string encode(const prodsafe::python::JsonResult& result) {
    if (!result.error.empty()) throw EncodeError(result.error);
    try {
      return result.value.dump();
    } catch (const nlohmann::json::exception& error) {
      throw EncodeError(fmt::format("cannot encode the result as JSON: {}", error.what()));
    }
  }
  static prodsafe::python::JsonResult decode(std::string_view bytes) {
    try {
      return {nlohmann::json::parse(bytes), {}};
    } catch (const nlohmann::json::exception& error) {
      throw DecodeError(fmt::format(
          "the stored result is not JSON ({}); a C++ worker's std::string result is stored as "
          "is, so effects shared with Python workers return nlohmann::json (or another JSON "
          "type) in C++",
          error.what()));
    }
  }
};

namespace prodsafe::python {
namespace {

namespace idem = prodsafe::idempotency;
using idem::EffectContext;
using idem::EffectType;
using nlohmann::json;
using std::chrono::milliseconds;

// Deeper values are refused (a cycle ends here too): dump() and the
// conversion back recurse.
constexpr int kMaxDepth = 500;

struct NotJson {
  std::string reason;
};

std::string type_name(py::handle value) {
  return py::str(py::type::handle_of(value).attr("__name__")).cast<std::string>();
}

// `value` as JSON; throws NotJson naming what JSON cannot hold. GIL held.
json to_json(py::handle value, int depth) {
  if (depth > kMaxDepth)
    throw NotJson{fmt::format("the result is nested deeper than {} levels (a cycle?)", kMaxDepth)};
  PyObject* object = value.ptr();
  if (object == Py_None) return nullptr;
  if (PyBool_Check(object)) return object == Py_True;
  if (PyLong_Check(object) || PyIndex_Check(object)) {  // also numpy's integers
    py::object integer = py::reinterpret_borrow<py::object>(value);
    if (!PyLong_Check(object)) {
      integer = py::reinterpret_steal<py::object>(PyNumber_Index(object));
      if (!integer) {
        PyErr_Clear();
        throw NotJson{
            fmt::format("the result holds a {} whose __index__ failed", type_name(value))};
      }
    }
    object = integer.ptr();
    int overflow = 0;
    const long long number = PyLong_AsLongLongAndOverflow(object, &overflow);
    if (overflow == 0) return number;
    if (overflow > 0) {
      const unsigned long long big = PyLong_AsUnsignedLongLong(object);
      if (!(big == static_cast<unsigned long long>(-1) && PyErr_Occurred())) return big;
      PyErr_Clear();
    }
    throw NotJson{"the result holds an int outside the 64-bit range JSON results share with C++"};
  }
  if (PyFloat_Check(object)) {
    const double number = PyFloat_AS_DOUBLE(object);
    if (!std::isfinite(number))
      throw NotJson{fmt::format("the result holds {}, which JSON cannot represent",
                                py::repr(value).cast<std::string>())};
    return number;
  }
  if (PyUnicode_Check(object)) {
    Py_ssize_t size = 0;
    const char* text = PyUnicode_AsUTF8AndSize(object, &size);
    if (text == nullptr) {
      PyErr_Clear();
      throw NotJson{"the result holds a str that is not valid Unicode (a lone surrogate)"};
    }
    return std::string(text, static_cast<std::size_t>(size));
  }
  if (PyDict_Check(object)) {
    json out = json::object();
    PyObject* key = nullptr;
    PyObject* item = nullptr;
    Py_ssize_t position = 0;
    while (PyDict_Next(object, &position, &key, &item)) {
      // Owned while converted: an __index__ may run Python code.
      const py::object owned_key = py::reinterpret_borrow<py::object>(key);
      const py::object owned_item = py::reinterpret_borrow<py::object>(item);
      if (!PyUnicode_Check(key))
        throw NotJson{
            fmt::format("the result holds a dict key of type {} ({}); JSON object keys are str",
                        type_name(owned_key), py::repr(owned_key).cast<std::string>())};
      out[to_json(owned_key, depth + 1).get<std::string>()] = to_json(owned_item, depth + 1);
    }
    return out;
  }
  if (PyList_Check(object) || PyTuple_Check(object)) {
    // The stored items themselves (a subclass's __iter__ is not called); the
    // size is read again each turn, as an __index__ may change a list.
    const bool list = PyList_Check(object);
    json out = json::array();
    for (Py_ssize_t i = 0; i < (list ? PyList_GET_SIZE(object) : PyTuple_GET_SIZE(object)); ++i) {
      const py::object item = py::reinterpret_borrow<py::object>(
          list ? PyList_GET_ITEM(object, i) : PyTuple_GET_ITEM(object, i));
      out.push_back(to_json(item, depth + 1));
    }
    return out;
  }
  throw NotJson{
      fmt::format("the result holds a value of type {}, which is not JSON (results are None, "
                  "bool, int, float, str, and lists, tuples and dicts with str keys of these)",
                  type_name(value))};
}

// GIL held.
py::object to_python(const json& value, int depth) {
  if (depth > kMaxDepth)
    raise_python(
        DecodeError(fmt::format("the stored result is nested deeper than {} levels", kMaxDepth)));
  switch (value.type()) {
    case json::value_t::null:
      return py::none();
    case json::value_t::boolean:
      return py::bool_(value.get<bool>());
    case json::value_t::number_integer:
      return py::int_(value.get<std::int64_t>());
    case json::value_t::number_unsigned:
      return py::int_(value.get<std::uint64_t>());
    case json::value_t::number_float:
      return py::float_(value.get<double>());
    case json::value_t::string: {
      const auto& text = value.get_ref<const std::string&>();
      PyObject* str =
          PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), nullptr);
      if (str == nullptr) {
        PyErr_Clear();
        raise_python(DecodeError("the stored result holds a string that is not UTF-8"));
      }
      return py::reinterpret_steal<py::object>(str);
    }
    case json::value_t::array: {
      py::list out(value.size());
      std::size_t index = 0;
      for (const json& item : value) out[index++] = to_python(item, depth + 1);
      return out;
    }
    case json::value_t::object: {
      py::dict out;
      for (const auto& [key, item] : value.items()) out[py::str(key)] = to_python(item, depth + 1);
      return out;
    }
    case json::value_t::binary:
    case json::value_t::discarded:
      break;
  }
  raise_python(DecodeError("the stored result is not a JSON value"));
}

// A Python object released with the GIL, from whatever thread drops the last
// reference (leaked once the interpreter is finalizing).
struct HeldError {
  py::object type, value, trace;
  HeldError(py::object t, py::object v, py::object tb)
      : type(std::move(t)), value(std::move(v)), trace(std::move(tb)) {}
  HeldError(const HeldError&) = delete;
  HeldError& operator=(const HeldError&) = delete;
  ~HeldError() {
    if (Py_IsInitialized() == 0 || _Py_IsFinalizing() != 0) {
      type.release();
      value.release();
      trace.release();
      return;
    }
    py::gil_scoped_acquire gil;
    type = py::object();
    value = py::object();
    trace = py::object();
  }
};

// What a Python effect raised, carried through the C++ wrapper (which
// releases or records the claim) back to the binding, which raises the very
// same Python exception again. Retryable when the Python exception is a
// prodsafe.Error whose retryable is True: then record_failures never
// records it, as in C++.
class PythonEffectError : public Error {
 public:
  PythonEffectError(const std::string& message, bool retryable, std::shared_ptr<HeldError> held)
      : Error(ErrorCode::kInvalidArgument, message),
        retryable_(retryable),
        held_(std::move(held)) {}
  [[nodiscard]] bool retryable() const noexcept override { return retryable_; }
  [[nodiscard]] const HeldError& held() const noexcept { return *held_; }

 private:
  bool retryable_;
  std::shared_ptr<HeldError> held_;
};

// Raises the effect's own exception (same object, type and traceback).
[[noreturn]] void reraise(const PythonEffectError& error) {
  const HeldError& held = error.held();
  PyErr_Restore(held.type.inc_ref().ptr(), held.value.inc_ref().ptr(),
                held.trace ? held.trace.inc_ref().ptr() : nullptr);
  throw py::error_already_set();
}

// "ValueError: message", as the record of a failure (record_failures). GIL held.
std::string describe(const py::error_already_set& error) {
  std::string text = py::str(error.type().attr("__name__")).cast<std::string>();
  try {
    const std::string message = py::str(error.value()).cast<std::string>();
    if (!message.empty()) text += ": " + message;
  } catch (const py::error_already_set&) {
    // str() of the exception raised: keep its type.
  }
  return text;
}

bool is_retryable(const py::error_already_set& error) {
  const py::object base = py::module_::import("prodsafe.errors").attr("Error");
  if (!py::isinstance(error.value(), base)) return false;
  try {
    return py::bool_(error.value().attr("retryable")).cast<bool>();
  } catch (const py::error_already_set&) {
    return false;
  }
}

// Whether `fn` wants the EffectContext: it has a required positional
// parameter. Raises WrongType when it is not callable, or is a generator
// function or (unless allow_async, for execute_once_async) an async def;
// InvalidArgument when it requires more than one argument. Plain functions
// and bound methods are read from their code object; anything else through
// inspect.signature (prodsafe.idempotency._required_positional).
bool takes_context(py::handle fn, std::string_view what, bool allow_async = false) {
  if (!PyCallable_Check(fn.ptr())) raise_wrong_type(what, "a callable", fn);
  PyObject* function = fn.ptr();
  int bound = 0;
  if (PyMethod_Check(function)) {
    function = PyMethod_GET_FUNCTION(function);
    bound = 1;
  }
  long long required = -1;
  if (PyFunction_Check(function)) {
    auto* code = reinterpret_cast<PyCodeObject*>(PyFunction_GET_CODE(function));
    const int async_flags = allow_async ? 0 : CO_COROUTINE;
    if ((code->co_flags & (async_flags | CO_ASYNC_GENERATOR | CO_GENERATOR)) != 0) {
      raise_wrong_type(what,
                       "a plain function (an async def goes to execute_once_async; a generator "
                       "is not an effect)",
                       fn);
    }
    PyObject* defaults = PyFunction_GET_DEFAULTS(function);
    const long long with_defaults = defaults == nullptr ? 0 : PyTuple_GET_SIZE(defaults);
    required = code->co_argcount - with_defaults - bound;
    if (required < 0) required = 0;
  } else {
    required = py::module_::import("prodsafe.idempotency")
                   .attr("_required_positional")(fn)
                   .cast<long long>();
  }
  if (required > 1) {
    raise_python(InvalidArgument(
        fmt::format("{} must take no argument or one (the EffectContext), but it requires {}", what,
                    required)));
  }
  return required == 1;
}

EffectType effect_type_arg(py::handle value) {
  if (py::isinstance<EffectType>(value)) return value.cast<EffectType>();
  if (py::isinstance<py::str>(value)) return EffectType(str_arg(value, "effect_type"));
  raise_wrong_type("effect_type", "an EffectType or a str", value);
}

std::string entity_arg(py::handle value, std::string_view what = "entity_id") {
  if (py::isinstance<py::int_>(value) && !py::isinstance<py::bool_>(value))
    return py::str(value).cast<std::string>();
  if (!py::isinstance<py::str>(value)) raise_wrong_type(what, "a str or an int", value);
  return str_arg(value, what);
}

idem::InProgressPolicy in_progress_arg(py::handle value, std::string_view what) {
  const std::string text = str_arg(value, what);
  if (text == "throw") return idem::InProgressPolicy::kThrow;
  if (text == "wait") return idem::InProgressPolicy::kWait;
  raise_python(
      InvalidArgument(fmt::format("{} must be \"throw\" or \"wait\", got \"{}\"", what, text)));
}

std::string path_arg(py::handle value, std::string_view what) {
  if (py::isinstance<py::str>(value)) return str_arg(value, what);
  if (py::hasattr(value, "__fspath__")) {
    py::object path = py::module_::import("os").attr("fspath")(value);
    if (py::isinstance<py::str>(path)) return str_arg(path, what);
  }
  raise_wrong_type(what, "a str or an os.PathLike", value);
}

int small_int(py::handle value, std::string_view what, long long low, long long high) {
  const long long number = int_arg(value, what);
  if (number < low || number > high)
    raise_python(
        InvalidArgument(fmt::format("{} must be {} to {}, got {}", what, low, high, number)));
  return static_cast<int>(number);
}

idem::Durability durability_arg(py::handle value, std::string_view what) {
  idem::Durability durability;
  if (py::isinstance<py::int_>(value) && !py::isinstance<py::bool_>(value)) {
    durability.replicas = small_int(value, fmt::format("{} (replicas)", what), 0, 100);
    return durability;
  }
  if (!py::isinstance<py::dict>(value))
    raise_wrong_type(what, "an int (replicas) or a dict of replicas, timeout, aof", value);
  for (const auto& [key, item] : value.cast<py::dict>()) {
    const std::string name = str_arg(key, fmt::format("a {} setting's name", what));
    const std::string field = fmt::format("{}[\"{}\"]", what, name);
    if (name == "replicas") {
      durability.replicas = small_int(item, field, 0, 100);
    } else if (name == "timeout") {
      durability.timeout = duration_arg(item, field);
    } else if (name == "aof") {
      durability.aof = bool_arg(item, field);
    } else {
      raise_python(InvalidArgument(fmt::format(
          "unknown {} setting '{}'; the settings are replicas, timeout, aof", what, name)));
    }
  }
  return durability;
}

idem::EffectPolicy policy_arg(py::handle value, const std::string& type) {
  const std::string what = "per_type[\"" + type + "\"]";
  if (!py::isinstance<py::dict>(value)) raise_wrong_type(what, "a dict of settings", value);
  idem::EffectPolicy policy;
  for (const auto& [key, item] : value.cast<py::dict>()) {
    const std::string name = str_arg(key, "a per_type setting's name");
    const std::string field = what + "[\"" + name + "\"]";
    if (name == "ttl") {
      policy.ttl = duration_arg(item, field);
    } else if (name == "lease") {
      policy.lease = duration_arg(item, field);
    } else if (name == "record_failures") {
      policy.record_failures = bool_arg(item, field);
    } else if (name == "fail_open") {
      policy.fail_open = bool_arg(item, field);
    } else if (name == "durability") {
      policy.durability = durability_arg(item, field);
    } else {
      raise_python(InvalidArgument(fmt::format(
          "unknown {} setting '{}'; the settings are ttl, lease, record_failures, fail_open, "
          "durability",
          what, name)));
    }
  }
  return policy;
}

idem::WrapperOptions options_from(const py::kwargs& kwargs) {
  idem::WrapperOptions options;
  bool directory_given = false;
  for (const auto& [key, value] : kwargs) {
    const std::string name = str_arg(key, "a keyword name");
    if (name == "ttl") {
      options.ttl = duration_arg(value, name);
    } else if (name == "lease") {
      options.lease = duration_arg(value, name);
    } else if (name == "renew_leases") {
      options.renew_leases = bool_arg(value, name);
    } else if (name == "in_progress") {
      options.in_progress = in_progress_arg(value, name);
    } else if (name == "wait_timeout") {
      options.wait_timeout = duration_arg(value, name);
    } else if (name == "wait_poll_initial") {
      options.wait_poll_initial = duration_arg(value, name);
    } else if (name == "wait_poll_max") {
      options.wait_poll_max = duration_arg(value, name);
    } else if (name == "record_failures") {
      options.record_failures = bool_arg(value, name);
    } else if (name == "commit_attempts") {
      options.commit_attempts = small_int(value, name, 0, 1000);
    } else if (name == "commit_retry_delay") {
      options.commit_retry_delay = duration_arg(value, name);
    } else if (name == "journal_directory" || name == "journal_dir") {
      if (directory_given)
        raise_python(InvalidArgument("give journal_directory or journal_dir, not both"));
      directory_given = true;
      options.journal_directory = path_arg(value, name);
    } else if (name == "journal_namespace") {
      options.journal_namespace = str_arg(value, name);
    } else if (name == "journal_flush_interval") {
      options.journal_flush_interval = duration_arg(value, name);
    } else if (name == "journal_scan_interval") {
      options.journal_scan_interval = duration_arg(value, name);
    } else if (name == "result_cache_size") {
      const long long size = int_arg(value, name);
      if (size < 0) raise_python(InvalidArgument("result_cache_size must be 0 (off) or more"));
      options.result_cache_size = static_cast<std::size_t>(size);
    } else if (name == "durability") {
      options.durability = durability_arg(value, name);
    } else if (name == "per_type") {
      if (!py::isinstance<py::dict>(value))
        raise_wrong_type(name, "a dict of effect type -> settings", value);
      for (const auto& [type, settings] : value.cast<py::dict>()) {
        const EffectType effect = effect_type_arg(type);
        options.per_type[effect.name()] = policy_arg(settings, effect.name());
      }
    } else {
      raise_python(InvalidArgument(
          "unknown option '" + name +
          "' for SideEffectWrapper; the options are ttl, lease, renew_leases, in_progress, "
          "wait_timeout, wait_poll_initial, wait_poll_max, record_failures, commit_attempts, "
          "commit_retry_delay, journal_directory (or journal_dir), journal_namespace, "
          "journal_flush_interval, journal_scan_interval, result_cache_size, durability, "
          "per_type"));
    }
  }
  return options;
}

// The store behind `redis`: an InMemoryEffectStore, or Redis records through
// the client client_arg() gives. Anything else is WrongType, also when
// reading it as a redis-py client failed in another way (a Mock).
std::shared_ptr<idem::EffectStore> store_arg(py::handle redis) {
  if (py::isinstance<idem::InMemoryEffectStore>(redis))
    return redis.cast<std::shared_ptr<idem::InMemoryEffectStore>>();
  std::shared_ptr<redis::Client> client;
  try {
    client = client_arg(redis);
  } catch (py::error_already_set& error) {
    // Not a connection at all: say what the wrapper takes, the in-memory
    // store included. Other prodsafe errors (a bad URL) stand as they are.
    const py::module_ errors = py::module_::import("prodsafe.errors");
    if (!error.matches(errors.attr("WrongType")) && error.matches(errors.attr("Error"))) throw;
    raise_wrong_type(
        "redis", "a prodsafe.Redis, a redis-py client or a prodsafe.InMemoryEffectStore", redis);
  }
  return std::make_shared<idem::RedisEffectStore>(std::move(client));
}

// What Python holds: the C++ wrapper, shared so that a wrapper in use by one
// thread survives another dropping the last Python reference.
struct Wrapper {
  std::shared_ptr<idem::SideEffectWrapper> impl;
  std::string description;

  Wrapper(std::shared_ptr<idem::SideEffectWrapper> wrapper, std::string text)
      : impl(std::move(wrapper)), description(std::move(text)) {}
  Wrapper(Wrapper&&) noexcept = default;
  Wrapper& operator=(Wrapper&&) noexcept = default;
  Wrapper(const Wrapper&) = delete;
  Wrapper& operator=(const Wrapper&) = delete;
  // The last reference stops the wrapper's background threads, which may be
  // in a Redis round trip: wait for them without the GIL.
  ~Wrapper() {
    if (!impl || Py_IsInitialized() == 0 || _Py_IsFinalizing() != 0 || PyGILState_Check() == 0)
      return;
    gil_release release;
    impl.reset();
  }
};

struct Outcome {
  bool executed = false;
  py::object result;
  bool recovered = false;
  bool commit_pending = false;
  bool unprotected = false;
  bool from_cache = false;
  bool result_unavailable = false;
  std::string key;
  std::uint64_t fencing_token = 0;
};

idem::CallOptions call_options(py::handle fingerprint, py::handle ttl, py::handle lease,
                               py::handle in_progress, py::handle wait_timeout) {
  idem::CallOptions call;
  if (!fingerprint.is_none()) call.fingerprint = str_arg(fingerprint, "fingerprint");
  if (!ttl.is_none()) call.ttl = duration_arg(ttl, "ttl");
  if (!lease.is_none()) call.lease = duration_arg(lease, "lease");
  if (!in_progress.is_none()) call.in_progress = in_progress_arg(in_progress, "in_progress");
  if (!wait_timeout.is_none()) call.wait_timeout = duration_arg(wait_timeout, "wait_timeout");
  return call;
}

Outcome execute_once(Wrapper& wrapper, py::handle type_arg, py::handle entity, py::handle fn,
                     const idem::CallOptions& call) {
  const EffectType type = effect_type_arg(type_arg);
  const std::string entity_id = entity_arg(entity);
  const bool with_context = takes_context(fn, "fn");
  const py::object effect = py::reinterpret_borrow<py::object>(fn);
  // The caller's reference to the Python wrapper keeps `wrapper` alive.
  idem::SideEffectWrapper& impl = *wrapper.impl;
  // This caller's own result, handed back as the very object (assigned with
  // the GIL held; destroyed here, with it).
  py::object produced;
  std::optional<idem::Outcome<JsonResult>> outcome;
  try {
    gil_release release;
    outcome.emplace(impl.execute_once(
        type, entity_id,
        [&](const EffectContext& context) -> JsonResult {
          py::gil_scoped_acquire gil;
          py::object value;
          try {
            value = with_context ? effect(context) : effect();
            if (PyCoro_CheckExact(value.ptr()) != 0 || py::hasattr(value, "__await__")) {
              // It has not run: fail the call (the claim is released).
              if (PyCoro_CheckExact(value.ptr()) != 0) value.attr("close")();
              raise_wrong_type("fn's result",
                               "a value (fn returned an awaitable: use "
                               "execute_once_async for async effects)",
                               value);
            }
          } catch (py::error_already_set& error) {
            auto held = std::make_shared<HeldError>(error.type(), error.value(), error.trace());
            throw PythonEffectError(describe(error), is_retryable(error), std::move(held));
          }
          // The effect has run: nothing from here on may fail the call.
          JsonResult out;
          try {
            out.value = to_json(value, 0);
          } catch (const NotJson& not_json) {
            out.error = not_json.reason;
          } catch (py::error_already_set& error) {
            out.error = "reading the result raised " + describe(error);
          } catch (const std::exception& error) {
            out.error = std::string("reading the result failed: ") + error.what();
          }
          if (!out.error.empty()) out.value = nullptr;
          produced = std::move(value);
          return out;
        },
        call));
  } catch (const PythonEffectError& error) {
    reraise(error);
  } catch (const LeaseLost& error) {
    py::object exception = python_error(error);
    exception.attr("result") = produced ? produced : py::none();
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exception.ptr())), exception.ptr());
    throw py::error_already_set();
  }
  Outcome out;
  out.executed = outcome->executed;
  out.recovered = outcome->recovered;
  out.commit_pending = outcome->commit_pending;
  out.unprotected = outcome->unprotected;
  out.from_cache = outcome->from_cache;
  out.result_unavailable = outcome->result_unavailable;
  out.key = std::move(outcome->key);
  out.fencing_token = outcome->fencing_token;
  if (produced) {
    out.result = std::move(produced);
  } else {
    out.result = to_python(outcome->result.value, 0);
  }
  return out;
}

std::string duration_text(milliseconds value) {
  return fmt::format("{:g}", static_cast<double>(value.count()) / 1000.0);
}

py::object record_of(const std::optional<idem::EffectRecord>& record) {
  if (!record) return py::none();
  py::dict out;
  out["state"] = record->state;
  out["fencing_token"] = record->token;
  out["holder_id"] = record->holder_id;
  out["fingerprint"] = record->fingerprint;
  out["result"] = py::bytes(record->result);
  out["error"] = record->error;
  out["lease_remaining"] = static_cast<double>(record->lease_remaining.count()) / 1000.0;
  out["ttl_remaining"] = static_cast<double>(record->ttl_remaining.count()) / 1000.0;
  return out;
}

std::string outcome_repr(const Outcome& outcome) {
  std::string text =
      fmt::format("Outcome(executed={}, result={}", outcome.executed ? "True" : "False",
                  py::repr(outcome.result).cast<std::string>());
  const auto flag = [&text](bool on, const char* name) {
    if (on) text += fmt::format(", {}=True", name);
  };
  flag(outcome.recovered, "recovered");
  flag(outcome.commit_pending, "commit_pending");
  flag(outcome.unprotected, "unprotected");
  flag(outcome.from_cache, "from_cache");
  flag(outcome.result_unavailable, "result_unavailable");
  text += fmt::format(", key={}, fencing_token={})",
                      py::repr(py::str(outcome.key)).cast<std::string>(), outcome.fencing_token);
  return text;
}

}  // namespace

void bind_idempotency(py::module_& m) {
  py::class_<EffectType>(m, "EffectType", R"doc(
A kind of side effect, run at most once per (type, entity id).

    EffectType.ORDER_PLACEMENT, EffectType.POSITION_UPDATE, EffectType.PNL_WRITE,
    EffectType.LEDGER_WRITE, EffectType.TRADE_STATE_WRITE
    EffectType("MY_TYPE")   # custom: 1 to 64 characters of [A-Za-z0-9_.-]

The Redis key of one effect is effect:<name>:<entity_id> (behind the client's
key_prefix), the same key C++ workers use. Equal to its name as a str.
)doc")
      .def(py::init([](py::handle name) { return EffectType(str_arg(name, "name")); }),
           py::arg("name"))
      .def_static(
          "custom", [](py::handle name) { return EffectType(str_arg(name, "name")); },
          py::arg("name"), "EffectType(name).")
      .def_property_readonly("name", &EffectType::name)
      .def("__eq__",
           [](const EffectType& self, py::handle other) {
             if (py::isinstance<EffectType>(other)) return self == other.cast<EffectType>();
             if (py::isinstance<py::str>(other))  // a lone surrogate equals no name
               return PyUnicode_Compare(py::str(self.name()).ptr(), other.ptr()) == 0;
             return false;
           })
      .def("__hash__", [](const EffectType& self) { return py::hash(py::str(self.name())); })
      .def("__str__", &EffectType::name)
      .def("__repr__",
           [](const EffectType& self) {
             for (const EffectType* builtin :
                  {&EffectType::ORDER_PLACEMENT, &EffectType::POSITION_UPDATE,
                   &EffectType::PNL_WRITE, &EffectType::LEDGER_WRITE,
                   &EffectType::TRADE_STATE_WRITE}) {
               if (self == *builtin) return "EffectType." + self.name();
             }
             return "EffectType('" + self.name() + "')";
           })
      .def(py::pickle(
          [](const EffectType& self) { return py::make_tuple(self.name()); },
          [](const py::tuple& state) { return EffectType(str_arg(state[0], "EffectType state")); }))
      .def_readonly_static("ORDER_PLACEMENT", &EffectType::ORDER_PLACEMENT)
      .def_readonly_static("POSITION_UPDATE", &EffectType::POSITION_UPDATE)
      .def_readonly_static("PNL_WRITE", &EffectType::PNL_WRITE)
      .def_readonly_static("LEDGER_WRITE", &EffectType::LEDGER_WRITE)
      .def_readonly_static("TRADE_STATE_WRITE", &EffectType::TRADE_STATE_WRITE);

  py::class_<EffectContext>(m, "EffectContext", R"doc(
Given to an effect function that takes one argument. Pass key and
fencing_token downstream so it can dedupe on its side (for an exchange: the
client order id). When recovering is True a previous run may have acted
already: check downstream before acting again.
)doc")
      .def_readonly("key", &EffectContext::key)
      .def_readonly("fencing_token", &EffectContext::fencing_token)
      .def_readonly("recovering", &EffectContext::recovering)
      .def("__repr__", [](const EffectContext& self) {
        return fmt::format("EffectContext(key={}, fencing_token={}, recovering={})",
                           py::repr(py::str(self.key)).cast<std::string>(), self.fencing_token,
                           self.recovering ? "True" : "False");
      });

  py::class_<Outcome>(m, "Outcome", R"doc(
What execute_once() returns. Unpacks like the seed's tuple:

    executed, result = wrapper.execute_once(...)

executed: this call ran the effect (False: an earlier run's result).
result: the effect's result (this caller's own object when it ran it, else
an equal value decoded from the stored JSON).
recovered: this call took over from an earlier run that may have acted.
commit_pending: the effect ran but its result waits in the local journal
until Redis accepts it; no later call runs it again.
unprotected: run without protection (Redis down, a fail_open type).
from_cache: answered from the in-process result cache.
result_unavailable: this call ran the effect but its result is not JSON,
so none is stored; later calls raise ResultUnavailable.
key, fencing_token: the effect's Redis key and the run's token.
)doc")
      .def_readonly("executed", &Outcome::executed)
      .def_readonly("result", &Outcome::result)
      .def_readonly("recovered", &Outcome::recovered)
      .def_readonly("commit_pending", &Outcome::commit_pending)
      .def_readonly("unprotected", &Outcome::unprotected)
      .def_readonly("from_cache", &Outcome::from_cache)
      .def_readonly("result_unavailable", &Outcome::result_unavailable)
      .def_readonly("key", &Outcome::key)
      .def_readonly("fencing_token", &Outcome::fencing_token)
      .def("__iter__",
           [](const Outcome& self) { return py::iter(py::make_tuple(self.executed, self.result)); })
      .def("__len__", [](const Outcome&) { return 2; })
      .def("__getitem__",
           [](const Outcome& self, py::handle index) -> py::object {
             // As the seed's tuple (executed, result): ints and slices.
             return py::make_tuple(self.executed, self.result)[index];
           })
      .def("__eq__",
           [](const Outcome& self, py::handle other) -> py::object {
             // Another Outcome: every field; a tuple: (executed, result).
             if (py::isinstance<Outcome>(other)) {
               const auto& that = other.cast<const Outcome&>();
               return py::bool_(
                   self.executed == that.executed && self.recovered == that.recovered &&
                   self.commit_pending == that.commit_pending &&
                   self.unprotected == that.unprotected && self.from_cache == that.from_cache &&
                   self.result_unavailable == that.result_unavailable && self.key == that.key &&
                   self.fencing_token == that.fencing_token && self.result.equal(that.result));
             }
             if (!py::isinstance<py::tuple>(other))
               return py::reinterpret_borrow<py::object>(Py_NotImplemented);
             return py::bool_(py::make_tuple(self.executed, self.result).equal(other));
           })
      .def("__repr__", &outcome_repr)
      .def(py::pickle(
          [](const Outcome& self) {
            return py::make_tuple(self.executed, self.result, self.recovered, self.commit_pending,
                                  self.unprotected, self.from_cache, self.result_unavailable,
                                  self.key, self.fencing_token);
          },
          [](const py::tuple& state) {
            if (state.size() != 9) raise_python(DecodeError("not a pickled Outcome"));
            Outcome out;
            out.executed = bool_arg(state[0], "Outcome state");
            out.result = state[1];
            out.recovered = bool_arg(state[2], "Outcome state");
            out.commit_pending = bool_arg(state[3], "Outcome state");
            out.unprotected = bool_arg(state[4], "Outcome state");
            out.from_cache = bool_arg(state[5], "Outcome state");
            out.result_unavailable = bool_arg(state[6], "Outcome state");
            out.key = str_arg(state[7], "Outcome state");
            out.fencing_token = state[8].cast<std::uint64_t>();
            return out;
          }));
  // __eq__ without __hash__: unhashable, as a mutable-looking result may be.
  m.attr("Outcome").attr("__hash__") = py::none();

  py::class_<idem::InMemoryEffectStore, std::shared_ptr<idem::InMemoryEffectStore>>(
      m, "InMemoryEffectStore", R"doc(
Effect records in this process's memory, for one process and for tests:
pass it where a SideEffectWrapper asks for redis. Same semantics as Redis,
but nothing is shared with other processes.
)doc")
      .def(py::init([] { return std::make_shared<idem::InMemoryEffectStore>(); }))
      .def("__len__", &idem::InMemoryEffectStore::size);

  py::class_<Wrapper>(m, "SideEffectWrapper", R"doc(
Runs side effects exactly once across every process sharing a Redis.

    SideEffectWrapper(redis, **options)

redis: a prodsafe.Redis, a redis-py client or a prodsafe.InMemoryEffectStore.
Options (durations in seconds or datetime.timedelta): ttl (72 h), lease
(30 s), renew_leases (True), in_progress ("throw" or "wait"), wait_timeout,
wait_poll_initial, wait_poll_max, record_failures (False), commit_attempts,
commit_retry_delay, journal_directory (or journal_dir), journal_namespace,
journal_flush_interval, journal_scan_interval, result_cache_size,
durability (replicas as an int, or a dict of replicas, timeout, aof) and
per_type ({effect type: {ttl, lease, record_failures, fail_open,
durability}}). The C++ SideEffectWrapper's WrapperOptions, same defaults.

Make wrappers after forking workers: a forked child's calls on its parent's
wrapper raise InvalidArgument. Safe for concurrent use by many threads.
)doc")
      .def(py::init([](py::handle redis, const py::kwargs& kwargs) {
             std::shared_ptr<idem::EffectStore> store = store_arg(redis);
             idem::WrapperOptions options = options_from(kwargs);
             std::string description = store->identity();
             gil_release release;  // adopts and commits old journals
             return Wrapper{
                 std::make_shared<idem::SideEffectWrapper>(std::move(store), std::move(options)),
                 std::move(description)};
           }),
           py::arg("redis"))
      .def(
          "execute_once",
          [](Wrapper& self, py::handle effect_type, py::handle entity_id, py::handle fn,
             py::handle fingerprint, py::handle ttl, py::handle lease, py::handle in_progress,
             py::handle wait_timeout) {
            return execute_once(self, effect_type, entity_id, fn,
                                call_options(fingerprint, ttl, lease, in_progress, wait_timeout));
          },
          py::arg("effect_type"), py::arg("entity_id"), py::arg("fn"),
          py::arg("fingerprint") = py::none(), py::kw_only(), py::arg("ttl") = py::none(),
          py::arg("lease") = py::none(), py::arg("in_progress") = py::none(),
          py::arg("wait_timeout") = py::none(), R"doc(
Runs fn at most once per (effect_type, entity_id) for the record's ttl and
returns an Outcome (executed, result). fn() or fn(ctx: EffectContext).
)doc")
      .def(
          "flush_journal",
          [](Wrapper& self) {
            gil_release release;
            return self.impl->flush_journal();
          },
          "Tries to commit every journaled result now; returns how many remain.")
      .def(
          "journal_pending", [](Wrapper& self) { return self.impl->journal_pending(); },
          "Results waiting in the journal for Redis.")
      .def(
          "stats",
          [](Wrapper& self) {
            const idem::WrapperStats stats = self.impl->stats();
            py::dict out;
            out["executed"] = stats.executed;
            out["duplicates"] = stats.duplicates;
            out["cache_hits"] = stats.cache_hits;
            out["conflicts"] = stats.conflicts;
            out["in_progress"] = stats.in_progress;
            out["recovered"] = stats.recovered;
            out["lease_lost"] = stats.lease_lost;
            out["commit_pending"] = stats.commit_pending;
            out["journal_committed"] = stats.journal_committed;
            out["fail_open"] = stats.fail_open;
            out["effect_errors"] = stats.effect_errors;
            out["failures_replayed"] = stats.failures_replayed;
            out["encode_errors"] = stats.encode_errors;
            out["results_unavailable"] = stats.results_unavailable;
            out["journal_damaged_lines"] = stats.journal_damaged_lines;
            return out;
          },
          "The wrapper's counters since it was made, as a dict.")
      .def(
          "key",
          [](Wrapper&, py::handle effect_type, py::handle entity_id) {
            return idem::effect_key(effect_type_arg(effect_type), entity_arg(entity_id));
          },
          py::arg("effect_type"), py::arg("entity_id"),
          "The effect's logical key, effect:<TYPE>:<entity_id>.")
      .def(
          "inspect",
          [](Wrapper& self, py::handle effect_type, py::handle entity_id) {
            const std::string key =
                idem::effect_key(effect_type_arg(effect_type), entity_arg(entity_id));
            std::optional<idem::EffectRecord> record;
            {
              gil_release release;
              record = self.impl->store().inspect(key);
            }
            return record_of(record);
          },
          py::arg("effect_type"), py::arg("entity_id"),
          "The stored record as a dict (state, fencing_token, result as bytes, ...), or None.")
      .def(
          "clear",
          [](Wrapper& self, py::handle effect_type, py::handle entity_id) {
            const std::string key =
                idem::effect_key(effect_type_arg(effect_type), entity_arg(entity_id));
            gil_release release;
            return self.impl->store().clear(key);
          },
          py::arg("effect_type"), py::arg("entity_id"),
          "Deletes the record (a recorded failure, an unavailable result) so the effect\n"
          "runs once more. Returns whether one existed.")
      .def("__repr__", [](const Wrapper& self) {
        const auto& options = self.impl->options();
        return fmt::format("prodsafe.SideEffectWrapper({}, ttl={}, lease={})", self.description,
                           duration_text(options.ttl), duration_text(options.lease));
      });

  m.def(
      "_takes_context", [](py::handle fn) { return takes_context(fn, "fn", true); }, py::arg("fn"));
  m.def(
      "_order_identity",
      [](py::handle symbol, py::handle side, py::handle quantity, py::handle price,
         py::handle client_order_id) {
        idem::OrderRequest order;
        order.symbol = str_arg(symbol, "symbol");
        order.side = str_arg(side, "side");
        order.quantity = float_arg(quantity, "quantity");
        if (!price.is_none()) order.price = float_arg(price, "price");
        if (!client_order_id.is_none())
          order.client_order_id = entity_arg(client_order_id, "client_order_id");
        idem::validate_order(order);
        return py::make_tuple(idem::order_entity_id(order), idem::order_fingerprint(order));
      },
      py::arg("symbol"), py::arg("side"), py::arg("quantity"), py::arg("price"),
      py::arg("client_order_id"));
}

}  // namespace prodsafe::python
