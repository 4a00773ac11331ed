// prodsafe logs through spdlog under the logger name "prodsafe".
//
// By default the logger writes to stderr at level "info". Replace its sinks or
// level with set_logger(), or fetch it with logger() and adjust it. Nothing
// prodsafe logs contains a password or a webhook secret.
//
// Thread safety: logger() and set_logger() are safe to call from any thread.
#pragma once

#include <memory>

#include <spdlog/logger.h>

namespace prodsafe {

inline constexpr const char* kLoggerName = "prodsafe";

// The logger prodsafe writes to. Never null.
[[nodiscard]] std::shared_ptr<spdlog::logger> logger();

// Makes `replacement` the logger prodsafe writes to (null restores the default).
void set_logger(std::shared_ptr<spdlog::logger> replacement);

}  // namespace prodsafe
