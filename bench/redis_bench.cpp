// PING through prodsafe's pool against a raw hiredis redisCommand PING to the
// same private redis-server, alternated in one loop. DESIGN.md's target: the
// pool adds at most 10 % to a round trip.
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

void BM_PoolPingPaired(benchmark::State& state) {
  prodsafe::redis::Client client(server->url());
  prodsafe::bench::paired_with_rtt(state, server->port(),
                                   [&] { benchmark::DoNotOptimize(client.ping()); });
}

BENCHMARK(BM_RawHiredisPing)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_PoolPing)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_PoolPingPaired)->Repetitions(5)->ReportAggregatesOnly(true);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  prodsafe::embedded::RedisServer redis;
  server = &redis;
  prodsafe::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  fmt::print("\n");
  reporter.print_paired_ratio("pool overhead (PING through the pool / raw PING)",
                              "BM_PoolPingPaired", 1.10);
  benchmark::Shutdown();
  return 0;
}
