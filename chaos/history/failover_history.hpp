// What a failover cost, from a run's history: the executions in the ledgers
// (each ran under a claim Redis granted), the answers the workers recorded
// (WorkerSpec::record_answers: which commits Redis acknowledged, and when
// each call started and ended), the effect records the final master holds,
// and when each fault was injected. The failover scenarios report these as
// measurements: with asynchronous replication a promoted replica may lack
// what the old master acknowledged, so exactly-once across failover is a
// figure to measure, not an invariant.
//
//   acknowledged claims lost   executions whose claim is not on the final
//                              master: the op's final record carries another
//                              token (Redis granted a later claim over it, so
//                              it had forgotten this one) or there is none
//   acknowledged commits lost  "committed" answers whose op's final record is
//                              not that execution's completed record
//   claims short of replicas   "short_of_replicas" answers (with a WAIT:
//                              claims too few replicas acknowledged, not
//                              used), per round like the losses
//   time to resume             per fault, from the fault until the end of the
//                              first call started after it that succeeded
//                              ("committed" or "duplicate") for an op the
//                              fault cut off (on a cluster: one shard's)
//
// Thread safety: pure functions over values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chaos/history/ledger.hpp"
#include "chaos/worker/worker.hpp"

namespace prodsafe::chaos {

// An op's effect record as the final master holds it.
struct FinalRecord {
  std::string state{};  // "completed", "in_progress", ...
  std::uint64_t token = 0;
};

struct FailoverFigures {
  // Executions in the ledgers, and those whose claim the final master lost.
  std::size_t claims = 0;
  std::vector<std::string> claims_lost{};  // "order-7 token 123"
  // Commits the store acknowledged ("committed" answers), and those lost.
  std::size_t commits_acknowledged = 0;
  std::vector<std::string> commits_lost{};  // "order-7 token 123 (final: in_progress 123)"
  // Per fault (in the order given): ms until the first success after it;
  // nullopt when no call started after it succeeded.
  std::vector<std::optional<std::int64_t>> resume_ms{};
  // Per fault, the claims and commits lost that were acknowledged before the
  // topology was whole again after it, and after it was whole again after
  // the fault before (the fault that lost them: a write taken by a paused
  // master that came back before its demotion counts against that pause);
  // one more slot at the end for those acknowledged after the last.
  std::vector<std::size_t> claims_lost_by_fault{};
  std::vector<std::size_t> commits_lost_by_fault{};
  // Calls whose claim fell short of the replicas asked for ("short_of_replicas"
  // answers), per fault as above.
  std::vector<std::size_t> shortfalls_by_fault{};
};

// A fault: when (steady clock, CLOCK_MONOTONIC ns), when the topology was
// whole again (0: at once), and which ops it cut off (empty: all).
struct FaultTime {
  std::int64_t at_ns = 0;
  std::int64_t healed_ns = 0;
  std::function<bool(std::string_view op)> affects{};
};

// `final_store` maps op ids to their final record (an op without a record is
// absent).
[[nodiscard]] FailoverFigures failover_figures(
    std::span<const LedgerEntry> executions, std::span<const WorkerEvent> answers,
    const std::map<std::string, FinalRecord>& final_store, std::span<const FaultTime> faults);

}  // namespace prodsafe::chaos
