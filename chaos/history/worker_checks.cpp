#include "chaos/history/worker_checks.hpp"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace prodsafe::chaos {

Invariant check_workers_exited(std::string name, std::span<WorkerProcess* const> workers) {
  std::vector<std::string> failed;
  for (WorkerProcess* worker : workers) {
    if (worker->killed()) continue;  // a fault the scenario injected
    if (worker->hung()) {
      failed.push_back(fmt::format("{}: hung, killed at its deadline", worker->name()));
    } else if (worker->running()) {
      failed.push_back(fmt::format("{}: still running", worker->name()));
    } else if (!worker->exit()->clean()) {
      failed.push_back(fmt::format("{}: {}", worker->name(), worker->exit()->describe()));
    }
  }
  return held_unless(std::move(name), failed);
}

Invariant check_results_agree(std::string name, std::span<const WorkerStats> stats) {
  std::map<std::string, std::pair<std::string, std::string>> first;  // op -> (worker, result)
  std::vector<std::string> disagreements;
  for (const WorkerStats& worker : stats) {
    for (const auto& [op, result] : worker.results) {
      const auto [it, inserted] = first.try_emplace(op, worker.name, result);
      if (!inserted && it->second.second != result) {
        disagreements.push_back(fmt::format("{}: {} got {}, {} got {}", op, it->second.first,
                                            it->second.second, worker.name, result));
      }
    }
  }
  return held_unless(std::move(name), disagreements, 3);
}

Invariant check_results_executed(std::string name, std::span<const WorkerStats> stats,
                                 std::span<const LedgerEntry> entries) {
  std::map<std::string, std::vector<std::string>> produced;  // op -> results of its executions
  for (const LedgerEntry& entry : entries)
    produced[entry.op_id].push_back(effect_result(entry.worker, entry.pid, entry.fencing_token));
  std::vector<std::string> phantoms;
  for (const WorkerStats& worker : stats) {
    for (const auto& [op, result] : worker.results) {
      const auto it = produced.find(op);
      if (it == produced.end() ||
          std::find(it->second.begin(), it->second.end(), result) == it->second.end()) {
        phantoms.push_back(fmt::format("{} got {} for {}", worker.name, result, op));
      }
    }
  }
  return held_unless(std::move(name), phantoms, 3);
}

}  // namespace prodsafe::chaos
