// The idempotency part of `prodsafe demo`: several workers place a stream of
// orders (every order requested by each of them: duplicates on purpose) while
// Redis is killed and restarted under them; their retries ride out the crash.
// Then one order's worker dies holding its lease, and another recovers it
// with a higher fencing token, and one order's commit meets a Redis crash.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/idempotency/execution_guard_adapter.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/retry/executor.hpp"

namespace prodsafe::cli {
namespace {

using namespace std::chrono_literals;
using idempotency::EffectContext;
using idempotency::OrderRequest;

constexpr int kWorkers = 4;
constexpr int kOrders = 250;

OrderRequest demo_order(const std::string& run, int n) {
  return OrderRequest{.symbol = "BTCUSDT",
                      .side = n % 2 == 0 ? "buy" : "sell",
                      .quantity = 0.001 * (n + 1),
                      .price = 50000.0,
                      .client_order_id = fmt::format("demo-{}-{}", run, n)};
}

// Kills Redis once `placed` reaches `after` (or the workers are done), and
// restarts it 300 ms later. Runs on the thread that started the server: a
// server is killed when the thread that started it exits (PR_SET_PDEATHSIG).
bool stage_crash(embedded::RedisServer& server, const std::atomic<int>& placed, int after,
                 const std::atomic<int>& workers_done) {
  while (placed.load() < after && workers_done.load() < kWorkers) std::this_thread::sleep_for(1ms);
  if (workers_done.load() == kWorkers) return false;
  server.kill();
  std::this_thread::sleep_for(300ms);
  server.restart();
  return true;
}

}  // namespace

OrdersDemoReport run_orders_demo(std::shared_ptr<redis::Client> client,
                                 embedded::RedisServer* server,
                                 const std::filesystem::path& journal_directory) {
  OrdersDemoReport report;
  auto store = std::make_shared<idempotency::RedisEffectStore>(client);
  idempotency::SideEffectWrapper wrapper(store,
                                         {.lease = 2s,
                                          .in_progress = idempotency::InProgressPolicy::kWait,
                                          .wait_timeout = 10s,
                                          .journal_directory = journal_directory.string()});

  // Ids unique to this run, so that the demo can run again on the same Redis.
  const std::string run = fmt::format("{:08x}", std::random_device{}());
  std::vector<std::atomic<int>> placements(kOrders);  // what the exchange saw, per order
  std::atomic<int> placed{0};
  std::atomic<int> suppressed{0};
  std::atomic<int> recovered{0};
  std::atomic<int> retries{0};
  std::atomic<int> failed{0};
  // Store errors are retried with backoff: an order must not be lost to a crash.
  const retry::RetryPolicy policy{
      .max_attempts = 40,
      .base_delay = 20ms,
      .max_delay = 250ms,
      .hooks = {.on_retry = [&retries](int, std::chrono::milliseconds,
                                       const std::string&) { retries.fetch_add(1); }},
      .job_type = "demo_orders"};

  std::atomic<int> workers_done{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; i < kOrders; ++i) {
        const int n = (i + w * 61) % kOrders;  // workers meet the orders in different orders
        try {
          const auto outcome = retry::run(policy, [&] {
            return idempotency::wrap_order_placement(
                wrapper,
                [&] {
                  placements[static_cast<std::size_t>(n)].fetch_add(1);
                  return placed.fetch_add(1) + 1;
                },
                demo_order(run, n));
          });
          if (!outcome.executed) suppressed.fetch_add(1);
          if (outcome.recovered) recovered.fetch_add(1);
        } catch (const Error& error) {
          failed.fetch_add(1);
          fmt::print(stderr, "order {} failed: {}\n", n, error.what());
        }
      }
      workers_done.fetch_add(1);
    });
  }
  const bool crashed = server != nullptr && stage_crash(*server, placed, kOrders / 3, workers_done);
  for (auto& worker : workers) worker.join();

  report.requested = kWorkers * kOrders;
  report.executed = placed.load();
  report.suppressed = suppressed.load();
  report.retries = retries.load();
  report.recoveries = recovered.load();
  report.lost = failed.load();
  for (const auto& count : placements) {
    if (count.load() == 1) ++report.placed_exactly_once;
  }
  fmt::print("{} workers requested {} orders ({} distinct): {} placed, {} duplicates suppressed\n",
             kWorkers, report.requested, kOrders, report.executed, report.suppressed);
  if (crashed) {
    fmt::print(
        "Redis was killed after {} placements and restarted 300 ms later: the workers retried "
        "{} calls with backoff; {} orders failed, {} recovered after the crash\n",
        kOrders / 3, report.retries, report.lost, report.recoveries);
  }
  fmt::print("the exchange saw {} of {} orders exactly once\n", report.placed_exactly_once,
             kOrders);

  // A worker that dies holding an order's lease: the next worker recovers it.
  const OrderRequest orphan{.symbol = "SOLUSDT",
                            .side = "sell",
                            .quantity = 10,
                            .price = 150.0,
                            .client_order_id = "demo-orphan-" + run};
  const std::string orphan_key =
      idempotency::effect_key(idempotency::EffectType::ORDER_PLACEMENT, *orphan.client_order_id);
  const auto dead = store->claim(orphan_key, "", 300ms, 1h);  // ... and it never commits
  std::this_thread::sleep_for(350ms);
  const auto recovery = idempotency::wrap_order_placement(
      wrapper,
      [](const EffectContext& ctx) {
        // A recovering run checks the exchange for ctx.key before placing.
        return ctx.recovering ? std::string("placed by the recovering worker")
                              : std::string("placed");
      },
      orphan);
  fmt::print(
      "order demo-orphan: its worker died holding the lease (token {}); after the lease "
      "(300 ms) another worker recovered it: recovered = {}, fencing token {}\n",
      dead.token, recovery.recovered, recovery.fencing_token);
  report.recovery_fenced = recovery.recovered && recovery.fencing_token > dead.token;
  if (recovery.recovered) ++report.recoveries;

  if (server != nullptr) {
    const OrderRequest order{.symbol = "ETHUSDT",
                             .side = "buy",
                             .quantity = 1.5,
                             .price = 3000.0,
                             .client_order_id = "demo-crash-" + run};
    int runs = 0;
    const auto outcome = idempotency::wrap_order_placement(
        wrapper,
        [&] {
          ++runs;
          server->kill();  // Redis dies after the order reached the exchange, before the commit
          return std::string("filled");
        },
        order);
    fmt::print(
        "order demo-crash: placed, then Redis was killed before the commit: "
        "commit_pending = {} (the result waits in the local journal)\n",
        outcome.commit_pending);
    server->restart();
    const auto retry = idempotency::wrap_order_placement(
        wrapper, [&] { return ++runs, std::string("placed again"); }, order);
    fmt::print(
        "after the restart a retry of demo-crash returned '{}' without placing it again "
        "(executed = {}, placements = {})\n",
        retry.result, retry.executed, runs);
    report.crash_order_placed_once = runs == 1 && !retry.executed && retry.result == "filled";
  }
  return report;
}

}  // namespace prodsafe::cli
