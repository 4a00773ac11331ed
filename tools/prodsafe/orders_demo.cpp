// The idempotency part of `prodsafe demo`: several workers place the same
// orders (duplicates injected on purpose), and one order's commit meets a
// Redis crash.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/idempotency/execution_guard_adapter.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"

namespace prodsafe::cli {

using idempotency::OrderRequest;

OrdersDemoReport run_orders_demo(std::shared_ptr<redis::Client> client,
                                 embedded::RedisServer* server,
                                 const std::filesystem::path& journal_directory) {
  OrdersDemoReport report;
  auto store = std::make_shared<idempotency::RedisEffectStore>(client);
  idempotency::SideEffectWrapper wrapper(store,
                                         {.in_progress = idempotency::InProgressPolicy::kWait,
                                          .journal_directory = journal_directory.string()});

  // Ids unique to this run, so that the demo can run again on the same Redis.
  const std::string run = fmt::format("{:08x}", std::random_device{}());
  // 4 workers, each handed the same 250 orders: every order is requested 4 times.
  constexpr int kWorkers = 4;
  constexpr int kOrders = 250;
  std::atomic<int> placed{0};
  std::atomic<int> suppressed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; i < kOrders; ++i) {
        const int n = (i + w * 61) % kOrders;  // workers meet the orders in different orders
        const OrderRequest order{.symbol = "BTCUSDT",
                                 .side = n % 2 == 0 ? "buy" : "sell",
                                 .quantity = 0.001 * (n + 1),
                                 .price = 50000.0,
                                 .client_order_id = fmt::format("demo-{}-{}", run, n)};
        const auto outcome = idempotency::wrap_order_placement(
            wrapper, [&] { return placed.fetch_add(1) + 1; }, order);
        if (!outcome.executed) suppressed.fetch_add(1);
      }
    });
  }
  for (auto& worker : workers) worker.join();
  report.requested = kWorkers * kOrders;
  report.executed = placed.load();
  report.suppressed = suppressed.load();
  fmt::print("{} workers requested {} orders ({} distinct): {} placed, {} duplicates suppressed\n",
             kWorkers, report.requested, kOrders, report.executed, report.suppressed);

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
