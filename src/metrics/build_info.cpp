#include "prodsafe/metrics/build_info.hpp"

#ifndef PRODSAFE_VERSION
#error "PRODSAFE_VERSION must be defined by the build (src/CMakeLists.txt)"
#endif

namespace prodsafe::metrics {

std::string_view build_version() noexcept { return PRODSAFE_VERSION; }

void register_build_info(Registry& registry) {
  registry
      .gauge("prodsafe_build_info", "The prodsafe library this process runs; always 1.",
             {"version"})
      .labels({build_version()})
      .set(1);
}

}  // namespace prodsafe::metrics
