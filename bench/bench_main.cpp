#include "bench_main.hpp"

#include <utility>

#include <fmt/format.h>

namespace prodsafe::bench {
namespace {
embedded::RedisServer* current = nullptr;
}  // namespace

embedded::RedisServer& server() { return *current; }

int run_benchmarks(int argc, char** argv, const std::function<void(const RatioReporter&)>& report) {
  return run_benchmarks(argc, argv, {}, report);
}

int run_benchmarks(int argc, char** argv, embedded::RedisServerOptions options,
                   const std::function<void(const RatioReporter&)>& report) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  embedded::RedisServer redis(std::move(options));
  current = &redis;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  fmt::print("\n");
  report(reporter);
  benchmark::Shutdown();
  current = nullptr;
  return 0;
}

}  // namespace prodsafe::bench
