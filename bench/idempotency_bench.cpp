// execute_once against a raw hiredis PING to the same private redis-server,
// alternated in one loop. DESIGN.md's targets: first execution (claim + commit)
// <= 2.5 RTT, duplicate (claim answers COMPLETED) <= 1.5 RTT, duplicate from
// the in-process cache <= 1 us. Then the same first execution and duplicate
// traced (WrapperOptions::tracer, OTLP/HTTP JSON to a collector stand-in on
// loopback that answers 200), as ratios against the untraced ones.
#include <atomic>
#include <memory>
#include <string>
#include <tuple>

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <httplib.h>

#include <thread>

#include "baseline.hpp"
#include "bench_main.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "prodsafe/tracing/otlp_exporter.hpp"

namespace {

using prodsafe::idempotency::EffectType;
using prodsafe::idempotency::RedisEffectStore;
using prodsafe::idempotency::SideEffectWrapper;
using prodsafe::idempotency::WrapperOptions;

// An OTLP collector stand-in: accepts every POST with 200.
class Collector {
 public:
  Collector() {
    server_.Post(".*", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }
  ~Collector() {
    server_.stop();
    thread_.join();
  }
  [[nodiscard]] std::string url() const {
    return fmt::format("http://127.0.0.1:{}/v1/traces", port_);
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

std::unique_ptr<SideEffectWrapper> make_wrapper(std::size_t cache_size, bool traced = false) {
  static Collector collector;
  auto client = std::make_shared<prodsafe::redis::Client>(prodsafe::bench::server().url());
  WrapperOptions options;
  options.journal_directory = (prodsafe::bench::server().directory() / "journal").string();
  options.result_cache_size = cache_size;
  if (traced) {
    prodsafe::tracing::OtlpOptions otlp;
    otlp.endpoint = collector.url();
    options.tracer = std::make_shared<prodsafe::tracing::Tracer>(
        std::make_shared<prodsafe::tracing::OtlpHttpExporter>(otlp));
  }
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

void BM_FirstExecutionTraced(benchmark::State& state) {
  auto wrapper = make_wrapper(0, true);
  static std::atomic<long> next{0};
  prodsafe::bench::paired_with_rtt(state, prodsafe::bench::server().port(), [&] {
    const std::string id = fmt::format("traced-{}", next.fetch_add(1));
    auto outcome = wrapper->execute_once(EffectType::ORDER_PLACEMENT, id, [] { return 1; });
    if (!outcome.executed) state.SkipWithError("not executed");
  });
}

void BM_DuplicateTraced(benchmark::State& state) {
  auto wrapper = make_wrapper(0, true);
  wrapper->execute_once(EffectType::ORDER_PLACEMENT, "duplicate-traced", [] { return 1; });
  prodsafe::bench::paired_with_rtt(state, prodsafe::bench::server().port(), [&] {
    auto outcome =
        wrapper->execute_once(EffectType::ORDER_PLACEMENT, "duplicate-traced", [] { return 2; });
    if (outcome.executed) state.SkipWithError("executed twice");
  });
}

BENCHMARK(BM_FirstExecution)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_FirstExecutionTraced)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_DuplicateTraced)->Repetitions(5)->ReportAggregatesOnly(true);
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
        for (const auto& [label, traced, plain] :
             {std::tuple{"first execution", "BM_FirstExecutionTraced", "BM_FirstExecution"},
              std::tuple{"duplicate", "BM_DuplicateTraced", "BM_Duplicate"}}) {
          // Each in RTTs measured beside it, so load that slows both cancels.
          const double on = reporter.median_counter(traced, "ratio");
          const double off = reporter.median_counter(plain, "ratio");
          if (on > 0 && off > 0) {
            fmt::print("tracing on / off, {}: {:.2f} RTT / {:.2f} RTT = {:.2f}\n", label, on, off,
                       on / off);
          }
        }
      });
}
