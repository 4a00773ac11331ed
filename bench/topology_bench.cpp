// What Sentinel and Cluster cost on the hot path, against a private
// embedded::RedisCluster (3 masters, a replica each) and SentinelTopology
// (a master, 2 replicas, 3 sentinels), all on this machine. Each paired
// benchmark alternates the RTT baseline (a raw PING to the node both sides
// reach), the one-server way and the topology's way (three_way.hpp):
//
//   BM_ClusterGet            GET of one key: a redis:// Client to the master
//                            that owns its slot, against a redis-cluster://
//                            Client (slot lookup, routing)
//   BM_ClusterFirstExecution execute_once of a new id (claim + commit): the
//                            private one-server Redis against the cluster
//                            (each id's own master)
//   BM_SentinelPing          PING: a redis:// Client to the master against a
//                            redis-sentinel:// Client (resolved once, when its
//                            connection opened: no round trip to a sentinel
//                            per command)
//   BM_Effects16Threads_*    effects per second (execute_once of new ids)
//                            from 16 threads through one Client: against the
//                            one private server (1 master), and against the
//                            cluster (3 masters). Reported, not a target: the
//                            cluster's six nodes share two cores with the
//                            benchmark.
//
// No targets are asserted; the binary prints the ratios taken in this run.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "bench_main.hpp"
#include "prodsafe/embedded/redis_cluster.hpp"
#include "prodsafe/embedded/sentinel_topology.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/slot.hpp"
#include "three_way.hpp"

namespace {

using prodsafe::embedded::RedisCluster;
using prodsafe::embedded::RedisServer;
using prodsafe::embedded::SentinelTopology;
using prodsafe::idempotency::EffectType;
using prodsafe::idempotency::RedisEffectStore;
using prodsafe::idempotency::SideEffectWrapper;
using prodsafe::idempotency::WrapperOptions;
using prodsafe::redis::Client;

std::unique_ptr<RedisCluster> cluster;
std::unique_ptr<SentinelTopology> sentinels;

constexpr const char* kKey = "bench:routed";

RedisServer& owner_of_key() { return cluster->slot_owner(prodsafe::redis::key_slot(kKey)); }

void BM_ClusterGet(benchmark::State& state) {
  RedisServer& owner = owner_of_key();
  Client single(owner.url());
  Client routed(cluster->url());
  single.set(kKey, "value");
  (void)routed.get(kKey);  // the slot map and the connection, outside the loop
  prodsafe::bench::three_way(
      state, owner.port(), "single", [&] { benchmark::DoNotOptimize(single.get(kKey)); }, "cluster",
      [&] { benchmark::DoNotOptimize(routed.get(kKey)); });
}

std::unique_ptr<SideEffectWrapper> make_wrapper(const std::string& url) {
  WrapperOptions options;
  options.journal_directory = (prodsafe::bench::server().directory() / "journal").string();
  return std::make_unique<SideEffectWrapper>(
      std::make_shared<RedisEffectStore>(std::make_shared<Client>(url)), options);
}

void BM_ClusterFirstExecution(benchmark::State& state) {
  // A node of a cluster answers MOVED for the slots of the others: the one
  // server is the private one.
  RedisServer& one = prodsafe::bench::server();
  auto single = make_wrapper(one.url());
  auto routed = make_wrapper(cluster->url());
  static std::atomic<long> next{0};
  const auto first = [&](SideEffectWrapper& wrapper, const char* prefix) {
    const std::string id = fmt::format("{}-{}", prefix, next.fetch_add(1));
    if (!wrapper.execute_once(EffectType::ORDER_PLACEMENT, id, [] { return 1; }).executed) {
      state.SkipWithError("not executed");
    }
  };
  // Load the scripts on every master and open the connections.
  for (int i = 0; i < 30; ++i) {
    first(*single, "warm-single");
    first(*routed, "warm-cluster");
  }
  prodsafe::bench::three_way(
      state, one.port(), "single", [&] { first(*single, "single"); }, "cluster",
      [&] { first(*routed, "cluster"); });
}

void BM_SentinelPing(benchmark::State& state) {
  RedisServer& master = sentinels->master();
  Client direct(master.url());
  Client resolved(sentinels->url());
  (void)direct.ping();
  (void)resolved.ping();
  prodsafe::bench::three_way(
      state, master.port(), "direct", [&] { benchmark::DoNotOptimize(direct.ping()); }, "sentinel",
      [&] { benchmark::DoNotOptimize(resolved.ping()); });
}

constexpr int kThreads = 16;
constexpr int kEffects = 4000;

void effects_from_16_threads(benchmark::State& state, const std::string& url) {
  auto wrapper = make_wrapper(url);
  static std::atomic<long> next{0};
  const auto run = [&](int count) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&wrapper, count] {
        for (int i = 0; i < count / kThreads; ++i) {
          const std::string id = fmt::format("t16-{}", next.fetch_add(1));
          (void)wrapper->execute_once(EffectType::ORDER_PLACEMENT, id, [] { return 1; });
        }
      });
    }
    for (auto& thread : threads) thread.join();
  };
  run(kThreads * 20);  // warm-up: connections, scripts
  for (auto _ : state) run(kEffects);
  state.counters["effects_per_s"] =
      benchmark::Counter(static_cast<double>(kEffects) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

void BM_Effects16Threads_1Master(benchmark::State& state) {
  effects_from_16_threads(state, prodsafe::bench::server().url());
}
void BM_Effects16Threads_3Masters(benchmark::State& state) {
  effects_from_16_threads(state, cluster->url());
}

BENCHMARK(BM_ClusterGet)->UseRealTime()->MinTime(0.3)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_ClusterFirstExecution)
    ->UseRealTime()
    ->MinTime(0.3)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);
BENCHMARK(BM_SentinelPing)->UseRealTime()->MinTime(0.3)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_Effects16Threads_1Master)
    ->UseRealTime()
    ->Iterations(1)
    ->Repetitions(3)
    ->ReportAggregatesOnly(true)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Effects16Threads_3Masters)
    ->UseRealTime()
    ->Iterations(1)
    ->Repetitions(3)
    ->ReportAggregatesOnly(true)
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  cluster = std::make_unique<RedisCluster>();
  sentinels = std::make_unique<SentinelTopology>();
  const int code =
      prodsafe::bench::run_benchmarks(argc, argv, [](const prodsafe::bench::RatioReporter& r) {
        prodsafe::bench::print_three_way(r, "GET of one key", "BM_ClusterGet", "single",
                                         "one server", "cluster", "cluster");
        prodsafe::bench::print_three_way(r, "first execution (claim + commit)",
                                         "BM_ClusterFirstExecution", "single", "one server",
                                         "cluster", "cluster");
        prodsafe::bench::print_three_way(r, "PING", "BM_SentinelPing", "direct", "direct",
                                         "sentinel", "sentinel");
        for (const char* masters : {"1Master", "3Masters"}) {
          const std::string name = fmt::format("BM_Effects16Threads_{}", masters);
          fmt::print("effects per second from 16 threads, {}: {:.0f} (reported, not a target)\n",
                     masters, r.median_counter(name, "effects_per_s"));
        }
      });
  sentinels.reset();
  cluster.reset();
  return code;
}
