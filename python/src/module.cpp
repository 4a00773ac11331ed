// prodsafe._prodsafe: the native half of the prodsafe Python package. The
// public names are re-exported by prodsafe/__init__.py; see docs/python.md.
#include "bindings.hpp"

PYBIND11_MODULE(_prodsafe, m) {
  using namespace prodsafe::python;
  m.doc() = "prodsafe's C++ core; import the prodsafe package, not this module.";
  m.attr("__version__") = PRODSAFE_VERSION;
  bind_errors(m);
  bind_redis(m);
  bind_testing(m);
  bind_idempotency(m);
  bind_alerts(m);
  bind_breaker(m);
  bind_retry(m);
  bind_metrics(m);
  bind_checks(m);
}
