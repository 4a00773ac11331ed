// The trial the failover scenarios share (failover: Sentinel; cluster_failover:
// Redis Cluster): order-placing worker processes (order_workers.hpp) reach a
// replicated topology through its URL while the scenario fails its masters
// over, round after round; then the history says what the failovers cost
// (chaos/history/failover_history.hpp).
//
//   FailoverTrial trial(context, "async", {.workers = 3, .orders = 300, .redis_url = url});
//   trial.run(rounds, [&](std::size_t round) { ...kill, wait for the promotion...;
//                                              return FaultRound{...}; }, deadline);
//   trial.report();
//
// Each worker owns a partition of the orders and requests each twice, in a
// shuffled order, request_gap apart (so the run spans the rounds); it records
// every answer (WorkerSpec::record_answers). Round k (from 0) is injected
// once the workers are k / (rounds + 1) of the way through their requests,
// and at least a second after they started or the previous round ended;
// `inject` blocks until the topology is whole again (the old master back as a
// replica). The last round is due with 2 / (rounds + 1) of the requests left,
// a margin for rounds slower than planned (a busy machine).
//
// Rows, named "<tag>: ...". Invariants: ledgers readable, every expected op
// executed, nothing unexpected executed, workers exited cleanly (none hung,
// nothing given up), every answer an execution's result, the faults reached
// the workers, every planned round injected. Measured (replication is
// asynchronous: what the old master acknowledged and had not yet replicated
// is lost when a replica is promoted, so exactly-once across failover is a
// figure, not an invariant): orders executed twice, re-executions without a
// higher token, acknowledged claims lost, acknowledged commits lost, the time
// to resume after each kind of fault; with wait_replicas, also the calls
// whose claim too few replicas acknowledged (ReplicationShortfall: the effect
// did not run, the worker asked again).
//
// Thread safety: like ScenarioContext, used by the thread that runs the
// scenario (which must also be the one that restarts the topology's nodes).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chaos/framework/scenario.hpp"

namespace prodsafe::chaos {

struct FailoverFleet {
  // Worker processes, orders in all (each requested twice). Defaults: 3, 300.
  std::size_t workers = 3;
  std::size_t orders = 300;
  // Pause between two requests of a worker. Default: 50 ms.
  milliseconds request_gap{50};
  // The topology's URL (redis-sentinel://..., redis-cluster://...). Required.
  std::string redis_url{};
  // Durability: WorkerSpec::wait_replicas (WrapperOptions::durability: WAIT
  // for this many replicas, 250 ms at most, after each claim and commit).
  // Default: 0, no WAIT (asynchronous replication only).
  int wait_replicas = 0;
};

// One injected fault.
struct FaultRound {
  // What was done, e.g. "SIGKILL master", "SIGSTOP master", "CLUSTER FAILOVER".
  std::string kind{};
  // When (steady clock): the signal, or the command sent.
  std::chrono::steady_clock::time_point at{};
  // How long until the topology had promoted a replica.
  milliseconds promoted{0};
  // How long until it was whole again (the old master a replica).
  milliseconds healed{0};
  // Which Redis keys the fault cut off (on a cluster, the failed shard's
  // slots); the time to resume counts successes on those only. Empty
  // (the default): every key.
  std::function<bool(std::string_view key)> affects{};
};

class FailoverTrial {
 public:
  FailoverTrial(ScenarioContext& context, const std::string& tag, FailoverFleet fleet);

  // Spawns the workers, injects `rounds` faults with `inject(round)` and
  // waits (up to `deadline`) for the workers to end.
  void run(std::size_t rounds, const std::function<FaultRound(std::size_t round)>& inject,
           milliseconds deadline);
  // Reads the final store (every order's record) and adds the rows and the
  // trial's JSON details (with `own` merged in).
  void report(nlohmann::json own = nlohmann::json::object());

 private:
  ScenarioContext& context_;
  Trial trial_;
  FailoverFleet fleet_;
  std::vector<WorkerProcess*> workers_{};
  std::vector<std::string> hung_{};
  std::vector<FaultRound> faults_{};
  std::size_t planned_ = 0;
  double seconds_ = 0;
};

}  // namespace prodsafe::chaos
