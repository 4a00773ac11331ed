#include "chaos/history/failover_history.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace prodsafe::chaos {
namespace {

std::string describe(const FinalRecord* record) {
  return record == nullptr ? std::string("no record")
                           : fmt::format("{} {}", record->state, record->token);
}

}  // namespace

FailoverFigures failover_figures(std::span<const LedgerEntry> executions,
                                 std::span<const WorkerEvent> answers,
                                 const std::map<std::string, FinalRecord>& final_store,
                                 std::span<const FaultTime> faults) {
  const auto find = [&](const std::string& op) -> const FinalRecord* {
    const auto it = final_store.find(op);
    return it == final_store.end() ? nullptr : &it->second;
  };
  // The first fault whose round had not ended by `ns`: the one that lost
  // what was acknowledged then.
  const auto fault_after = [&](std::int64_t ns) {
    std::size_t index = 0;
    while (index < faults.size() && std::max(faults[index].at_ns, faults[index].healed_ns) < ns)
      ++index;
    return index;
  };
  FailoverFigures figures;
  figures.claims_lost_by_fault.assign(faults.size() + 1, 0);
  figures.commits_lost_by_fault.assign(faults.size() + 1, 0);
  figures.shortfalls_by_fault.assign(faults.size() + 1, 0);
  for (const LedgerEntry& execution : executions) {
    ++figures.claims;
    const FinalRecord* record = find(execution.op_id);
    if (record == nullptr || record->token != execution.fencing_token) {
      figures.claims_lost.push_back(fmt::format("{} token {} (final: {})", execution.op_id,
                                                execution.fencing_token, describe(record)));
      ++figures.claims_lost_by_fault[fault_after(execution.steady_ns)];
    }
  }
  for (const WorkerEvent& answer : answers) {
    if (answer.event == "short_of_replicas")
      ++figures.shortfalls_by_fault[fault_after(answer.ended_ns)];
    if (answer.event != "committed") continue;
    ++figures.commits_acknowledged;
    const FinalRecord* record = find(answer.op);
    if (record == nullptr || record->token != answer.token || record->state != "completed") {
      figures.commits_lost.push_back(
          fmt::format("{} token {} (final: {})", answer.op, answer.token, describe(record)));
      ++figures.commits_lost_by_fault[fault_after(answer.ended_ns)];
    }
  }
  for (const FaultTime& fault : faults) {
    std::optional<std::int64_t> first;
    for (const WorkerEvent& answer : answers) {
      const bool success = answer.event == "committed" || answer.event == "duplicate";
      if (!success || answer.started_ns < fault.at_ns) continue;
      if (fault.affects && !fault.affects(answer.op)) continue;
      const std::int64_t took = answer.ended_ns - fault.at_ns;
      if (!first || took < *first) first = took;
    }
    figures.resume_ms.push_back(first ? std::optional<std::int64_t>(*first / 1'000'000)
                                      : std::nullopt);
  }
  return figures;
}

}  // namespace prodsafe::chaos
