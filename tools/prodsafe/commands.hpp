// The prodsafe CLI's subcommands. Each returns the process exit code.
#pragma once

#include <optional>
#include <string>

namespace prodsafe::cli {

// Exit codes shared by the subcommands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUnreachable = 2;

// `prodsafe demo`: what the foundation does, against a private redis-server
// (or `redis_url`): version, round trips, pipelines, concurrency, scripts,
// and recovery from a Redis crash and a Redis pause.
int run_foundation_demo(const std::optional<std::string>& redis_url);

// `prodsafe ping URL`: connects through the pool and prints the server's
// version and round-trip times.
int run_ping(const std::string& redis_url, int count);

}  // namespace prodsafe::cli
