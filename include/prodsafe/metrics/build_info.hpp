// prodsafe's version, and the prodsafe_build_info series that reports it.
//
//   register_build_info(registry);
//   // prodsafe_build_info{version="0.1.0"} 1
//
// Thread safety: both functions may be called from any thread (the registry
// is thread-safe).
#pragma once

#include <string_view>

#include "prodsafe/metrics/registry.hpp"

namespace prodsafe::metrics {

// The version in prodsafe's CMake project(), e.g. "0.1.0".
[[nodiscard]] std::string_view build_version() noexcept;

// Sets the gauge prodsafe_build_info{version="<build_version()>"} to 1 in
// `registry`, so a dashboard can tell which prodsafe each process runs.
// Calling it again changes nothing. MetricsServer calls it on the registry it
// serves.
void register_build_info(Registry& registry);

}  // namespace prodsafe::metrics
