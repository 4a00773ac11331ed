// prodsafe.idempotency: bindings (docs/python.md).
#include "bindings.hpp"

namespace prodsafe::python {

void bind_idempotency(py::module_& m) { static_cast<void>(m); }

}  // namespace prodsafe::python
