// Test-only: GoogleTest prints breaker states by name ("HALF_OPEN"), not as bytes.
#pragma once

#include <ostream>

#include "prodsafe/breaker/breaker_store.hpp"

namespace prodsafe::breaker {
inline void PrintTo(State state, std::ostream* out) { *out << to_string(state); }
}  // namespace prodsafe::breaker
