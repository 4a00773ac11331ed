// Shared pieces of the Python extension prodsafe._prodsafe (docs/python.md).
//
// Each area of the package binds itself in its own file (bind_<area>, called
// from module.cpp in the order listed there). The rules every binding
// follows:
// - The GIL is released (gil_release, below) around every call that may
//   wait: a Redis round trip, a sleep, a lock another thread may hold long.
// - A Python callable is only ever called with the GIL held; from a C++
//   thread, through call_contained() (hooks) or with py::gil_scoped_acquire
//   (effects, whose exceptions propagate).
// - Arguments a user gets wrong arrive as py::object or py::handle and are
//   checked with the *_arg() helpers below, so a wrong type raises
//   prodsafe.WrongType naming the parameter, not pybind11's generic message.
// - prodsafe::Error thrown by C++ becomes the prodsafe.errors class of the
//   same name (module.cpp registers the translator).
#pragma once

#include <pybind11/chrono.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/client.hpp"

namespace prodsafe::python {

namespace py = pybind11;

void bind_errors(py::module_& m);
void bind_redis(py::module_& m);
void bind_testing(py::module_& m);
void bind_idempotency(py::module_& m);
void bind_alerts(py::module_& m);
void bind_breaker(py::module_& m);
void bind_retry(py::module_& m);
void bind_metrics(py::module_& m);
void bind_checks(py::module_& m);

// The Python exception (an instance of the prodsafe.errors class that matches
// the error's dynamic type) for `error`, with its attributes set. The caller
// raises it (PyErr_SetObject) or adds to it first (LeaseLost's result).
[[nodiscard]] py::object python_error(const Error& error);
// Raises `error` as its prodsafe.errors class (sets the Python error and
// throws py::error_already_set).
[[noreturn]] void raise_python(const Error& error);
// Raises prodsafe.WrongType (an InvalidArgument and a TypeError): "<what>
// must be <expected>, not <type name>".
[[noreturn]] void raise_wrong_type(std::string_view what, std::string_view expected,
                                   py::handle got);

// The shared redis::Client behind `redis`: a prodsafe.Redis, or a redis-py
// client (redis.Redis, redis.cluster.RedisCluster, or one made through
// redis.sentinel.Sentinel), for which prodsafe opens its own connections
// with the same settings (prodsafe/_adapt.py; one prodsafe.Redis per redis-py
// client, kept while that client lives). Raises WrongType for anything else.
[[nodiscard]] std::shared_ptr<redis::Client> client_arg(py::handle redis);

// Checked conversions for user arguments (raise WrongType naming `what`).
[[nodiscard]] std::string str_arg(py::handle value, std::string_view what);
// A duration: a number of seconds (int or float) or a datetime.timedelta,
// rounded to milliseconds. Raises InvalidArgument when it is negative or
// not finite.
[[nodiscard]] std::chrono::milliseconds duration_arg(py::handle value, std::string_view what);
[[nodiscard]] bool bool_arg(py::handle value, std::string_view what);
[[nodiscard]] long long int_arg(py::handle value, std::string_view what);
[[nodiscard]] double float_arg(py::handle value, std::string_view what);

// Releases the GIL for its scope, as py::gil_scoped_release does, but its
// destructor may unwind. A thread (a daemon thread, say) that takes the GIL
// back once the interpreter is finalizing is ended by Python with
// pthread_exit, whose forced unwind aborts the process (std::terminate) if
// it leaves a noexcept destructor such as ~gil_scoped_release (pybind11
// issue #2215); from this one it unwinds to pybind11's dispatcher, which
// lets it through, and the thread ends quietly.
class gil_release {
 public:
  gil_release() : state_(PyEval_SaveThread()) {}
  gil_release(const gil_release&) = delete;
  gil_release& operator=(const gil_release&) = delete;
  ~gil_release() noexcept(false) { PyEval_RestoreThread(state_); }

 private:
  PyThreadState* state_;
};

// True from the atexit handler on (or once the interpreter is finalizing):
// no thread but the one holding the GIL may take it any more (alerts.cpp).
bool interpreter_closing() noexcept;

// A shared_ptr whose deleter drops the GIL while `T`'s destructor runs (it may
// join a thread, or wait for a webhook queue to drain), when the deleting
// thread holds it and the interpreter is not closing.
template <class T>
std::shared_ptr<T> released_on_delete(std::unique_ptr<T> object) {
  return std::shared_ptr<T>(object.release(), [](T* doomed) {
    if (!interpreter_closing() && PyGILState_Check() != 0) {
      gil_release release;
      delete doomed;
    } else {
      delete doomed;
    }
  });
}

// `value` as a str, ill-formed UTF-8 replaced (a server's or a user's bytes).
[[nodiscard]] py::str utf8_text(std::string_view value);

// Calls `fn(args...)` with the GIL, from any thread, and contains what it
// raises: the exception is reported through sys.unraisablehook (as Python
// does for exceptions it cannot propagate) with `where` as the context, and
// false is returned. Does nothing and returns false once the interpreter is
// finalizing. For hooks called by C++ threads, whose failures must not reach
// the caller (an alert hook raising must not break record_failure()).
template <class... Args>
bool call_contained(const py::object& fn, std::string_view where, Args&&... args) {
  if (Py_IsInitialized() == 0 || _Py_IsFinalizing() != 0) return false;
  py::gil_scoped_acquire gil;
  try {
    fn(std::forward<Args>(args)...);
    return true;
  } catch (py::error_already_set& error) {
    error.discard_as_unraisable(std::string(where).c_str());
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_RuntimeError, error.what());
    PyErr_WriteUnraisable(py::str(std::string(where)).ptr());
  }
  return false;
}

}  // namespace prodsafe::python
