#include "chaos/history/fencing.hpp"

#include <algorithm>
#include <optional>
#include <tuple>

#include <fmt/format.h>

#include "chaos/history/invariant.hpp"
#include "prodsafe/core/error.hpp"

namespace prodsafe::chaos {
FencingCheck check_fenced_executions(std::span<const LedgerEntry> entries,
                                     std::span<const WorkerFault> faults,
                                     const std::set<std::int64_t>& killed_pids) {
  std::map<std::string, std::vector<LedgerEntry>> by_op;
  for (const LedgerEntry& entry : in_ledger_order(entries)) by_op[entry.op_id].push_back(entry);
  std::set<std::pair<std::int64_t, std::string>> paused_on;
  for (const WorkerFault& fault : faults) {
    if (fault.kind == WorkerFault::Kind::kPause) paused_on.emplace(fault.pid, fault.op);
  }

  FencingCheck check;
  std::vector<std::string> token_twice;
  std::vector<std::string> unfenced;
  for (auto& [op, executions] : by_op) {
    std::stable_sort(executions.begin(), executions.end(),
                     [](const LedgerEntry& a, const LedgerEntry& b) {
                       return a.fencing_token < b.fencing_token;
                     });
    const LedgerEntry& last = executions.back();
    check.final_execution[op] = last;
    for (std::size_t i = 0; i + 1 < executions.size(); ++i) {
      const LedgerEntry& extra = executions[i];
      if (extra.fencing_token == executions[i + 1].fencing_token) {
        token_twice.push_back(fmt::format("{} token {} ({}, {})", op, extra.fencing_token,
                                          extra.worker, executions[i + 1].worker));
      }
      if (paused_on.contains({extra.pid, op})) {
        ++check.superseded_paused;
      } else if (killed_pids.contains(extra.pid)) {
        ++check.after_kill;
      } else {
        ++check.silent;
        unfenced.push_back(fmt::format("{} by healthy {} (token {}; final token {})", op,
                                       extra.worker, extra.fencing_token, last.fencing_token));
      }
      if (!executions[i + 1].recovering) {
        unfenced.push_back(fmt::format("{} token {} by {} ran again without recovering", op,
                                       executions[i + 1].fencing_token, executions[i + 1].worker));
      }
    }
  }

  std::vector<std::string> unrecovered;
  for (const WorkerFault& fault : faults) {
    const auto it = by_op.find(fault.op);
    const bool recovered =
        it != by_op.end() &&
        std::any_of(it->second.begin(), it->second.end(), [&](const LedgerEntry& entry) {
          return entry.fencing_token > fault.token && entry.recovering;
        });
    if (!recovered) {
      unrecovered.push_back(
          fmt::format("{} of {} (token {})", fault.op, fault.worker, fault.token));
    }
  }
  check.invariants.push_back(held_unless(std::string(kNoTokenTwice), token_twice));
  check.invariants.push_back(held_unless(std::string(kExtrasAreFenced), unfenced, 3));
  check.invariants.push_back(held_unless(std::string(kFaultsRecovered), unrecovered));
  return check;
}

Invariant check_store_keeps_final(std::string name, idempotency::EffectStore& store,
                                  const idempotency::EffectType& type,
                                  std::span<const std::string> ops,
                                  const std::map<std::string, LedgerEntry>& final_execution,
                                  std::map<std::string, std::string>* stored) {
  std::vector<std::string> wrong;
  for (const std::string& op : ops) {
    std::optional<idempotency::EffectRecord> record;
    try {
      record = store.inspect(idempotency::effect_key(type, op));
    } catch (const Error& error) {
      wrong.push_back(fmt::format("{}: {}", op, error.what()));
      continue;
    }
    const auto it = final_execution.find(op);
    if (!record || record->state != "completed" || it == final_execution.end()) {
      wrong.push_back(fmt::format("{}: {}{}", op, record ? record->state : "no record",
                                  it == final_execution.end() ? ", never executed" : ""));
      continue;
    }
    if (stored != nullptr) (*stored)[op] = record->result;
    const LedgerEntry& last = it->second;
    if (record->token != last.fencing_token ||
        record->result != effect_result(last.worker, last.pid, last.fencing_token)) {
      wrong.push_back(fmt::format("{}: stored token {} ({}), highest executed {}", op,
                                  record->token, record->result, last.fencing_token));
    }
  }
  return held_unless(std::move(name), wrong, 3);
}

Invariant check_pauses_refused(std::string name, std::span<const WorkerFault> faults,
                               std::span<WorkerProcess* const> workers) {
  // From the events files: a paused worker killed later wrote no stats.
  std::set<std::tuple<std::int64_t, std::string, std::uint64_t>> refused;
  for (WorkerProcess* worker : workers) {
    for (const WorkerEvent& event : worker->events()) {
      if (event.event == "lease_lost") refused.emplace(worker->pid(), event.op, event.token);
    }
  }
  std::vector<std::string> accepted;
  for (const WorkerFault& fault : faults) {
    if (fault.kind != WorkerFault::Kind::kPause) continue;
    if (!refused.contains({fault.pid, fault.op, fault.token}))
      accepted.push_back(fmt::format("{} of {} (token {})", fault.op, fault.worker, fault.token));
  }
  return held_unless(std::move(name), accepted);
}

Invariant check_results_stored(std::string name, std::span<const WorkerStats> stats,
                               const std::map<std::string, std::string>& stored) {
  std::vector<std::string> differs;
  for (const WorkerStats& worker : stats) {
    for (const auto& [op, result] : worker.results) {
      const auto it = stored.find(op);
      if (it != stored.end() && it->second != result)
        differs.push_back(
            fmt::format("{}: {} got {}, stored {}", op, worker.name, result, it->second));
    }
  }
  return held_unless(std::move(name), differs, 3);
}

}  // namespace prodsafe::chaos
