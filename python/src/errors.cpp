// prodsafe::Error -> prodsafe.errors (python/prodsafe/errors.py).
#include <cmath>

#include "bindings.hpp"

namespace prodsafe::python {
namespace {

py::object error_class(const char* name) {
  return py::module_::import("prodsafe.errors").attr(name);
}

// The class name and the attributes beyond message, code and retryable.
py::object instantiate(const Error& error) {
  py::dict fields;
  const char* name = "Error";
  if (const auto* e = dynamic_cast<const Timeout*>(&error)) {
    static_cast<void>(e);
    name = "Timeout";
  } else if (dynamic_cast<const StoreUnavailable*>(&error) != nullptr) {
    name = "StoreUnavailable";
  } else if (const auto* shortfall = dynamic_cast<const ReplicationShortfall*>(&error)) {
    name = "ReplicationShortfall";
    fields["acknowledged"] = shortfall->acknowledged();
    fields["requested"] = shortfall->requested();
  } else if (const auto* reply = dynamic_cast<const ReplyError*>(&error)) {
    name = "ReplyError";
    fields["server_message"] = py::str(reply->server_message());
    fields["prefix"] = py::str(std::string(reply->prefix()));
  } else if (dynamic_cast<const IoError*>(&error) != nullptr) {
    name = "IoError";
  } else if (dynamic_cast<const ConfigError*>(&error) != nullptr) {
    name = "ConfigError";
  } else if (dynamic_cast<const ProtocolError*>(&error) != nullptr) {
    name = "ProtocolError";
  } else if (dynamic_cast<const DecodeError*>(&error) != nullptr) {
    name = "DecodeError";
  } else if (dynamic_cast<const EncodeError*>(&error) != nullptr) {
    name = "EncodeError";
  } else if (dynamic_cast<const InvalidArgument*>(&error) != nullptr) {
    name = "InvalidArgument";
  } else if (const auto* conflict = dynamic_cast<const Conflict*>(&error)) {
    name = "Conflict";
    fields["key"] = py::str(conflict->key());
  } else if (const auto* busy = dynamic_cast<const AlreadyInProgress*>(&error)) {
    name = "AlreadyInProgress";
    fields["key"] = py::str(busy->key());
    fields["retry_after"] = static_cast<double>(busy->retry_after().count()) / 1000.0;
  } else if (const auto* lost = dynamic_cast<const LeaseLost*>(&error)) {
    name = "LeaseLost";
    fields["key"] = py::str(lost->key());
    fields["token"] = lost->token();
  } else if (const auto* violation = dynamic_cast<const CardinalityViolation*>(&error)) {
    name = "CardinalityViolation";
    fields["metric"] = py::str(violation->metric());
  } else if (const auto* failed = dynamic_cast<const EffectFailed*>(&error)) {
    name = "EffectFailed";
    fields["key"] = py::str(failed->key());
    fields["recorded_error"] = py::str(failed->recorded_error());
  } else if (const auto* unavailable = dynamic_cast<const ResultUnavailable*>(&error)) {
    name = "ResultUnavailable";
    fields["key"] = py::str(unavailable->key());
    fields["reason"] = py::str(unavailable->reason());
  }
  fields["code"] = py::str(std::string(to_string(error.code())));
  fields["retryable"] = error.retryable();
  // py::str rejects invalid UTF-8; a server's message may hold anything.
  return error_class(name)(utf8_text(error.what()), **fields);
}

}  // namespace

py::object python_error(const Error& error) { return instantiate(error); }

py::str utf8_text(std::string_view value) {
  PyObject* decoded =
      PyUnicode_DecodeUTF8(value.data(), static_cast<Py_ssize_t>(value.size()), "replace");
  if (decoded == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(decoded);
}

void raise_python(const Error& error) {
  py::object exception = python_error(error);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exception.ptr())), exception.ptr());
  throw py::error_already_set();
}

void raise_wrong_type(std::string_view what, std::string_view expected, py::handle got) {
  const std::string type_name = py::str(py::type::handle_of(got).attr("__name__"));
  py::object exception = error_class("WrongType")(std::string(what) + " must be " +
                                                  std::string(expected) + ", not " + type_name);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exception.ptr())), exception.ptr());
  throw py::error_already_set();
}

std::string str_arg(py::handle value, std::string_view what) {
  if (!py::isinstance<py::str>(value)) raise_wrong_type(what, "a str", value);
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(value.ptr(), &size);
  if (data == nullptr) {  // a lone surrogate: not encodable as UTF-8
    PyErr_Clear();
    raise_python(InvalidArgument(std::string(what) + " is not encodable as UTF-8"));
  }
  return {data, static_cast<std::size_t>(size)};
}

bool bool_arg(py::handle value, std::string_view what) {
  if (!py::isinstance<py::bool_>(value)) raise_wrong_type(what, "a bool", value);
  return value.cast<bool>();
}

long long int_arg(py::handle value, std::string_view what) {
  if (py::isinstance<py::bool_>(value) || !py::isinstance<py::int_>(value))
    raise_wrong_type(what, "an int", value);
  try {
    return value.cast<long long>();
  } catch (const py::cast_error&) {
    raise_python(InvalidArgument(std::string(what) + " is out of range"));
  }
}

double float_arg(py::handle value, std::string_view what) {
  if (py::isinstance<py::bool_>(value) ||
      !(py::isinstance<py::float_>(value) || py::isinstance<py::int_>(value)))
    raise_wrong_type(what, "a number", value);
  return value.cast<double>();
}

std::chrono::milliseconds duration_arg(py::handle value, std::string_view what) {
  double seconds = 0;
  const py::object timedelta = py::module_::import("datetime").attr("timedelta");
  if (py::isinstance(value, timedelta)) {
    seconds = value.attr("total_seconds")().cast<double>();
  } else if (!py::isinstance<py::bool_>(value) &&
             (py::isinstance<py::float_>(value) || py::isinstance<py::int_>(value))) {
    seconds = value.cast<double>();
  } else {
    raise_wrong_type(what, "a number of seconds or a datetime.timedelta", value);
  }
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e12)
    raise_python(
        InvalidArgument(std::string(what) + " must be a finite, non-negative number of seconds"));
  return std::chrono::milliseconds(std::llround(seconds * 1000.0));
}

void bind_errors(py::module_& m) {
  static_cast<void>(m);
  py::register_exception_translator([](std::exception_ptr pending) {
    try {
      if (pending) std::rethrow_exception(pending);
    } catch (const Error& error) {
      py::object exception = python_error(error);
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exception.ptr())), exception.ptr());
    }
  });
}

}  // namespace prodsafe::python
