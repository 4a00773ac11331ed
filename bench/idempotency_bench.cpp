// execute_once against a raw hiredis PING to the same private redis-server,
// alternated in one loop. DESIGN.md's targets: first execution (claim + commit)
// <= 2.5 RTT, duplicate (claim answers COMPLETED) <= 1.5 RTT, duplicate from
// the in-process cache <= 1 us.
#include <atomic>
#include <memory>
#include <string>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "baseline.hpp"
#include "bench_main.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"

namespace {

using prodsafe::idempotency::EffectType;
using prodsafe::idempotency::RedisEffectStore;
using prodsafe::idempotency::SideEffectWrapper;
using prodsafe::idempotency::WrapperOptions;

std::unique_ptr<SideEffectWrapper> make_wrapper(std::size_t cache_size) {
  auto client = std::make_shared<prodsafe::redis::Client>(prodsafe::bench::server().url());
  WrapperOptions options;
  options.journal_directory = (prodsafe::bench::server().directory() / "journal").string();
  options.result_cache_size = cache_size;
  return std::make_unique<SideEffectWrapper>(std::make_shared<RedisEffectStore>(client), options);
}

void BM_FirstExecution(benchmark::State& state) {
  auto wrapper = make_wrapper(0);
  static std::atomic<long> next{0};
  prodsafe::bench::paired_with_rtt(state, prodsafe::bench::server().port(), [&] {
    const std::string id = fmt::format("first-{}", next.fetch_add(1));
    auto outcome = wrapper->execute_once(EffectType::ORDER_PLACEMENT, id, [] { return 1; });
    if (!outcome.executed) state.SkipWithError("not executed");
  });
}

void BM_Duplicate(benchmark::State& state) {
  auto wrapper = make_wrapper(0);
  wrapper->execute_once(EffectType::ORDER_PLACEMENT, "duplicate", [] { return 1; });
  prodsafe::bench::paired_with_rtt(state, prodsafe::bench::server().port(), [&] {
    auto outcome =
        wrapper->execute_once(EffectType::ORDER_PLACEMENT, "duplicate", [] { return 2; });
    if (outcome.executed) state.SkipWithError("executed twice");
  });
}

void BM_CachedDuplicate(benchmark::State& state) {
  auto wrapper = make_wrapper(1024);
  wrapper->execute_once(EffectType::ORDER_PLACEMENT, "cached", [] { return 1; });
  for (auto _ : state) {
    auto outcome = wrapper->execute_once(EffectType::ORDER_PLACEMENT, "cached", [] { return 2; });
    benchmark::DoNotOptimize(outcome.result);
  }
}

BENCHMARK(BM_FirstExecution)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_Duplicate)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_CachedDuplicate)->Repetitions(5)->ReportAggregatesOnly(true);

}  // namespace

int main(int argc, char** argv) {
  return prodsafe::bench::run_benchmarks(
      argc, argv, [](const prodsafe::bench::RatioReporter& reporter) {
        reporter.print_paired_ratio("first execution (claim + commit) in RTT", "BM_FirstExecution",
                                    2.5);
        reporter.print_paired_ratio("duplicate (claim answers COMPLETED) in RTT", "BM_Duplicate",
                                    1.5);
        reporter.print_absolute("cached duplicate", "BM_CachedDuplicate", 1000.0);
      });
}
