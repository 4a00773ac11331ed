// PING through prodsafe's pool against a raw hiredis redisCommand PING, to the
// same private redis-server in the same run. DESIGN.md's target: the pool adds
// at most 10 % to a round trip.
#include <cstdlib>
#include <memory>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "baseline.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/redis/client.hpp"
#include "ratio_reporter.hpp"

namespace {

prodsafe::embedded::RedisServer* server = nullptr;

void BM_RawHiredisPing(benchmark::State& state) {
  prodsafe::bench::raw_hiredis_ping(state, server->port());
}

void BM_PoolPing(benchmark::State& state) {
  prodsafe::redis::Client client(server->url());
  for (auto _ : state) benchmark::DoNotOptimize(client.ping());
}

// Alternate the two so that drifts in machine load hit both alike.
BENCHMARK(BM_RawHiredisPing)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_PoolPing)->Repetitions(5)->ReportAggregatesOnly(true);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  prodsafe::embedded::RedisServer redis;
  server = &redis;
  prodsafe::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  fmt::print("\n");
  reporter.print_ratio("pool overhead", "BM_PoolPing", "BM_RawHiredisPing", 1.10);
  benchmark::Shutdown();
  return 0;
}
