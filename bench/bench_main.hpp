// The main() every Redis benchmark binary shares: starts a private
// redis-server, runs the registered benchmarks with a RatioReporter, then lets
// the binary print its targets.
#pragma once

#include <functional>

#include "prodsafe/embedded/redis_server.hpp"
#include "ratio_reporter.hpp"

namespace prodsafe::bench {

// The server the benchmarks run against (valid while run_benchmarks runs).
embedded::RedisServer& server();

// Returns main()'s exit code.
int run_benchmarks(int argc, char** argv, const std::function<void(const RatioReporter&)>& report);
// The same against a server started with `options` (e.g. one that also
// listens on a TLS port).
int run_benchmarks(int argc, char** argv, embedded::RedisServerOptions options,
                   const std::function<void(const RatioReporter&)>& report);

}  // namespace prodsafe::bench
