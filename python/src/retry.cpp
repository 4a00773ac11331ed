// prodsafe.retry: bindings (docs/python.md).
#include "bindings.hpp"

namespace prodsafe::python {

void bind_retry(py::module_& m) { static_cast<void>(m); }

}  // namespace prodsafe::python
