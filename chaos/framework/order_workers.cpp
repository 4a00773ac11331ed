#include "chaos/framework/order_workers.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace prodsafe::chaos {
namespace {

// WrapperOptions the worker keeps at their defaults: 3 commit attempts,
// 50 ms apart, doubling.
constexpr int kCommitAttempts = 3;
constexpr milliseconds kCommitDelays{50 + 100};
// Scheduling on two busy cores.
constexpr milliseconds kSlack{250};

}  // namespace

std::vector<WorkerSpec> order_worker_specs(ScenarioContext& context, const Trial& trial,
                                           const OrderFleet& fleet) {
  std::vector<WorkerSpec> specs;
  for (std::size_t w = 0; w < fleet.workers; ++w) {
    WorkerSpec spec = context.worker_spec(trial, fmt::format("w{}", w + 1), fleet.redis_url);
    spec.op_pattern = fleet.op_pattern;
    spec.op_count = fleet.orders;
    spec.partition_count = fleet.workers;
    spec.partition_index = w;
    spec.repeat = fleet.repeat;
    spec.shuffle = true;
    spec.effect_before_ledger = fleet.effect;
    spec.effect_after_ledger = fleet.effect;
    spec.lease = fleet.lease;
    specs.push_back(std::move(spec));
  }
  return specs;
}

std::vector<WorkerProcess*> spawn_all(ScenarioContext& context, std::span<const WorkerSpec> specs) {
  std::vector<WorkerProcess*> workers;
  for (const WorkerSpec& spec : specs) workers.push_back(&context.spawn(spec));
  return workers;
}

void fail_fast(WorkerSpec& spec, milliseconds command_timeout) {
  spec.wait_in_progress = false;
  spec.command_timeout = command_timeout;
  spec.connect_timeout = milliseconds(100);
  spec.pool_checkout_timeout = milliseconds(100);
  spec.reconnect_backoff_max = milliseconds(100);
  spec.retry_backoff_max = milliseconds(100);
}

milliseconds call_bound(const WorkerSpec& spec) {
  const milliseconds round_trip = std::max(spec.reconnect_backoff_max, spec.pool_checkout_timeout) +
                                  spec.connect_timeout + spec.command_timeout;
  return (2 + kCommitAttempts) * round_trip + kCommitDelays + spec.effect_before_ledger +
         spec.effect_after_ledger + kSlack;
}

void RecoveryWatch::start(std::span<WorkerProcess* const> workers, Clock::time_point ended) {
  ended_ = ended;
  slowest_ = milliseconds(0);
  waiting_.clear();
  for (WorkerProcess* worker : workers) waiting_[worker] = worker->probe().requests_done;
}

void RecoveryWatch::poll(Clock::time_point now) {
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    WorkerProcess* worker = it->first;
    if (!worker->running() || worker->probe().requests_done > it->second) {
      slowest_ = std::max(slowest_, std::chrono::duration_cast<milliseconds>(now - ended_));
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<std::string> RecoveryWatch::waiting() const {
  std::vector<std::string> names;
  for (const auto& [worker, done] : waiting_) names.push_back(worker->name());
  return names;
}

std::vector<std::string> RecoveryWatch::give_up() {
  std::vector<std::string> names = waiting();
  waiting_.clear();
  return names;
}

}  // namespace prodsafe::chaos
