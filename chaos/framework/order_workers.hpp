// Building blocks of the scenarios in which worker processes place orders:
// the partitioned fleet of order-placing workers (kill_redis, redis_hang,
// network), the worst case of one execute_once() call, and the watch for
// every worker answering again once a fault has ended.
//
// Thread safety: like ScenarioContext, used by the one thread that runs the
// scenario.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "chaos/framework/scenario.hpp"
#include "chaos/framework/worker_process.hpp"
#include "chaos/worker/worker.hpp"

namespace prodsafe::chaos {

// A fleet of workers w1..wN placing the orders of op_pattern: each owns a
// partition of them and requests each of its orders `repeat` times,
// shuffled (a retry, a redelivered message).
struct OrderFleet {
  // How many workers (and partitions). Default: 1.
  std::size_t workers = 1;
  // The orders' ids, "order-%d" style. Default: "order-%d".
  std::string op_pattern = "order-%d";
  // How many orders in all. Default: 0.
  std::size_t orders = 0;
  // Requests per order. Default: 2.
  std::size_t repeat = 2;
  // The effect's time before and (again) after its ledger write. Default: 2 ms.
  milliseconds effect{2};
  // The claim's lease. Default: 2000 ms.
  milliseconds lease{2000};
  // Where the workers reach Redis. Empty (the default): the Redis under test.
  std::string redis_url{};
};

// One spec per worker of `fleet`, for the scenario to adjust (timeouts,
// request gap) and then spawn_all().
[[nodiscard]] std::vector<WorkerSpec> order_worker_specs(ScenarioContext& context,
                                                         const Trial& trial,
                                                         const OrderFleet& fleet);
// Starts a worker per spec, in order.
std::vector<WorkerProcess*> spawn_all(ScenarioContext& context, std::span<const WorkerSpec> specs);

// Short timeouts for a worker that must fail fast when Redis hangs:
// AlreadyInProgress retried instead of waited on, `command_timeout`, and
// 100 ms connect timeout, pool checkout, reconnect and retry backoff.
void fail_fast(WorkerSpec& spec, milliseconds command_timeout);

// The longest one execute_once() call of a worker with this spec may take
// when every round trip uses its whole budget: at most 5 round trips (a
// journal flush, the claim, 3 commit attempts, the wrapper's defaults), each
// bounded by backoff + connect + command timeout, plus the commit backoff
// (50 + 100 ms), the effect and 250 ms for scheduling on two busy cores.
[[nodiscard]] milliseconds call_bound(const WorkerSpec& spec);

// After a fault ends: which workers have answered a request again (or
// ended), and how long the slowest took.
class RecoveryWatch {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts watching `workers`; the fault ended at `ended`.
  void start(std::span<WorkerProcess* const> workers, Clock::time_point ended = Clock::now());
  // Stops waiting for the workers that answered (or ended) by `now`.
  void poll(Clock::time_point now = Clock::now());
  // Some worker has not answered again yet.
  [[nodiscard]] bool watching() const noexcept { return !waiting_.empty(); }
  // The longest a worker took to answer again (0 before any did).
  [[nodiscard]] milliseconds slowest() const noexcept { return slowest_; }
  // The names of the workers still waited for.
  [[nodiscard]] std::vector<std::string> waiting() const;
  // Stops waiting; returns the names of the workers still waited for.
  std::vector<std::string> give_up();

 private:
  Clock::time_point ended_{};
  std::map<WorkerProcess*, std::uint64_t> waiting_{};  // worker -> requests done at the end
  milliseconds slowest_{0};
};

}  // namespace prodsafe::chaos
