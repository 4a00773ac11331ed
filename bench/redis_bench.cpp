// PING through prodsafe's pool against a raw hiredis redisCommand PING to the
// same private redis-server, alternated in one loop. DESIGN.md's target: the
// pool adds at most 10 % to a round trip.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "baseline.hpp"
#include "bench_main.hpp"
#include "prodsafe/redis/client.hpp"

namespace {

void BM_RawHiredisPing(benchmark::State& state) {
  prodsafe::bench::raw_hiredis_ping(state, prodsafe::bench::server().port());
}

void BM_PoolPing(benchmark::State& state) {
  prodsafe::redis::Client client(prodsafe::bench::server().url());
  for (auto _ : state) benchmark::DoNotOptimize(client.ping());
}

void BM_PoolPingPaired(benchmark::State& state) {
  prodsafe::redis::Client client(prodsafe::bench::server().url());
  prodsafe::bench::paired_with_rtt(state, prodsafe::bench::server().port(),
                                   [&] { benchmark::DoNotOptimize(client.ping()); });
}

BENCHMARK(BM_RawHiredisPing)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_PoolPing)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_PoolPingPaired)->Repetitions(5)->ReportAggregatesOnly(true);

}  // namespace

int main(int argc, char** argv) {
  return prodsafe::bench::run_benchmarks(
      argc, argv, [](const prodsafe::bench::RatioReporter& reporter) {
        reporter.print_paired_ratio("pool overhead (PING through the pool / raw PING)",
                                    "BM_PoolPingPaired", 1.10);
      });
}
