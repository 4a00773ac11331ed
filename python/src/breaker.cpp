// prodsafe.breaker: bindings (docs/python.md).
#include "bindings.hpp"

namespace prodsafe::python {

void bind_breaker(py::module_& m) { static_cast<void>(m); }

}  // namespace prodsafe::python
