// The breaker's hot paths. DESIGN.md's targets: can_retry() in CLOSED
// <= 100 ns with no round trip; record_failure() <= 1.5 RTT (paired with a raw
// hiredis PING to the same server in one loop).
#include <memory>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "baseline.hpp"
#include "bench_main.hpp"
#include "prodsafe/breaker/circuit_breaker.hpp"
#include "prodsafe/breaker/redis_breaker_store.hpp"

namespace {

using namespace prodsafe::breaker;

std::shared_ptr<RedisBreakerStore> store() {
  return std::make_shared<RedisBreakerStore>(
      std::make_shared<prodsafe::redis::Client>(prodsafe::bench::server().url()));
}

void BM_CanRetryClosed(benchmark::State& state) {
  CircuitBreaker breaker(store(), "bench-closed", {.staleness = std::chrono::hours(1)});
  (void)breaker.can_retry();  // first sync
  const auto before = breaker.store_operations();
  for (auto _ : state) benchmark::DoNotOptimize(breaker.can_retry().allowed);
  if (breaker.store_operations() != before) state.SkipWithError("can_retry made a round trip");
}

void BM_RecordFailure(benchmark::State& state) {
  // A threshold that is never reached: every call counts a failure in CLOSED.
  CircuitBreaker breaker(store(), "bench-failures", {.failure_threshold = 1'000'000'000});
  prodsafe::bench::paired_with_rtt(state, prodsafe::bench::server().port(),
                                   [&] { breaker.record_failure(); });
}

BENCHMARK(BM_CanRetryClosed)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_RecordFailure)->Repetitions(5)->ReportAggregatesOnly(true);

}  // namespace

int main(int argc, char** argv) {
  return prodsafe::bench::run_benchmarks(
      argc, argv, [](const prodsafe::bench::RatioReporter& reporter) {
        reporter.print_absolute("can_retry in CLOSED", "BM_CanRetryClosed", 100);
        reporter.print_paired_ratio("record_failure in RTT", "BM_RecordFailure", 1.5);
      });
}
