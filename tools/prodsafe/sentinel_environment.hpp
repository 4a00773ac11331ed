// The sentinels' credentials for the CLI's redis-sentinel:// URLs, which
// are separate from the master's (the URL's): from the environment only, so
// that no password shows in `ps`.
//
//   PRODSAFE_SENTINEL_USER      the sentinels' ACL user (default: none)
//   PRODSAFE_SENTINEL_PASSWORD  the sentinels' requirepass (default: none)
#pragma once

#include "prodsafe/redis/options.hpp"

namespace prodsafe::cli {

// redis::SentinelOptions with the variables that are set and not empty.
[[nodiscard]] redis::SentinelOptions sentinel_options_from_environment();

}  // namespace prodsafe::cli
