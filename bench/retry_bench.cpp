// The retry module's hot paths. DESIGN.md's targets: spike detector and
// histogram record <= 50 ns; tracker operations <= 1.5 RTT (paired with a raw
// hiredis PING to the same server in one loop).
#include <atomic>
#include <memory>
#include <string>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "baseline.hpp"
#include "bench_main.hpp"
#include "prodsafe/retry/histogram.hpp"
#include "prodsafe/retry/redis_window_store.hpp"
#include "prodsafe/retry/retry_window_tracker.hpp"
#include "prodsafe/retry/spike_detector.hpp"

namespace {

using namespace prodsafe::retry;

void BM_SpikeRecordRetry(benchmark::State& state) {
  RetrySpikeDetector detector;
  for (auto _ : state) benchmark::DoNotOptimize(detector.record_retry());
}

void BM_HistogramRecord(benchmark::State& state) {
  RetryHistogram histogram;
  int attempts = 0;
  for (auto _ : state) histogram.record(++attempts & 31);
  benchmark::DoNotOptimize(histogram.total());
}

void BM_TrackerIncrement(benchmark::State& state) {
  RetryWindowTracker tracker(std::make_shared<RedisRetryWindowStore>(
      std::make_shared<prodsafe::redis::Client>(prodsafe::bench::server().url())));
  tracker.start_window("bench-job");
  prodsafe::bench::paired_with_rtt(state, prodsafe::bench::server().port(), [&] {
    benchmark::DoNotOptimize(tracker.increment_attempt("bench-job"));
  });
}

void BM_TrackerStartAndClose(benchmark::State& state) {
  RetryWindowTracker tracker(std::make_shared<RedisRetryWindowStore>(
      std::make_shared<prodsafe::redis::Client>(prodsafe::bench::server().url())));
  bool open = false;
  prodsafe::bench::paired_with_rtt(state, prodsafe::bench::server().port(), [&] {
    if (open) {
      benchmark::DoNotOptimize(tracker.close_window("bench-window", true));
    } else {
      benchmark::DoNotOptimize(tracker.start_window("bench-window", "bench"));
    }
    open = !open;
  });
}

BENCHMARK(BM_SpikeRecordRetry)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_HistogramRecord)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_TrackerIncrement)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_TrackerStartAndClose)->Repetitions(5)->ReportAggregatesOnly(true);

}  // namespace

int main(int argc, char** argv) {
  return prodsafe::bench::run_benchmarks(
      argc, argv, [](const prodsafe::bench::RatioReporter& reporter) {
        reporter.print_absolute("spike detector record_retry", "BM_SpikeRecordRetry", 50);
        reporter.print_absolute("histogram record", "BM_HistogramRecord", 50);
        reporter.print_paired_ratio("tracker increment_attempt in RTT", "BM_TrackerIncrement", 1.5);
        reporter.print_paired_ratio("tracker start_window / close_window in RTT",
                                    "BM_TrackerStartAndClose", 1.5);
      });
}
