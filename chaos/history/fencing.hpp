// Checks for runs whose faults may legitimately execute an effect twice: a
// worker killed after the downstream acted but before its commit (the
// documented at-least-once window of a crash), and a worker paused past its
// lease that finishes its effect late. Such a duplicate is allowed only as a
// FENCED recovery: a lower token of a faulted worker, superseded by a
// recovery with a higher token, so that a downstream that rejects stale
// tokens keeps exactly one execution. Anything else is a silent duplicate.
//
//   FencingCheck fencing = check_fenced_executions(ledgers.entries, faults, killed_pids);
//   for (Invariant& row : fencing.invariants) context.add(row);
//   context.add(check_store_keeps_final("...", store, type, ops, fencing.final_execution));
//
// Thread safety: pure functions, except that check_store_keeps_final reads the store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chaos/framework/worker_process.hpp"
#include "chaos/history/checker.hpp"
#include "chaos/history/ledger.hpp"
#include "chaos/worker/probe.hpp"
#include "prodsafe/idempotency/effect_store.hpp"
#include "prodsafe/idempotency/effect_type.hpp"

namespace prodsafe::chaos {

// The rows check_fenced_executions() returns, in this order.
inline constexpr std::string_view kNoTokenTwice = "no fencing token executed twice";
inline constexpr std::string_view kExtrasAreFenced =
    "extra executions are faulted workers' lower tokens";
inline constexpr std::string_view kFaultsRecovered = "every fault recovered with a higher token";

// A fault a scenario injected into a worker in the middle of an effect.
struct WorkerFault {
  enum class Kind { kKill, kPause };
  Kind kind = Kind::kKill;
  std::string worker{};
  std::int64_t pid = 0;
  std::string op{};
  // The token the victim's effect ran under, and where it was struck.
  std::uint64_t token = 0;
  WorkerPhase phase = WorkerPhase::kEffectRunning;
};

struct FencingCheck {
  std::vector<Invariant> invariants{};
  // Extra (superseded) executions, by cause.
  std::size_t after_kill = 0;         // of a killed worker: downstream acted, commit lost
  std::size_t superseded_paused = 0;  // of a worker paused on that op: its commit was refused
  std::size_t silent = 0;             // of a healthy worker, or not superseded: violations
  // Per op, its execution with the highest token: the one that stands.
  std::map<std::string, LedgerEntry> final_execution{};
};

// Over every op's executions, in token order:
// - no token is executed twice;
// - every execution but the last has a lower token and belongs to a worker
//   paused on that op or killed (`killed_pids`: every worker process killed
//   during the run, mid-effect or not), and every later one ran as a recovery;
// - every fault is followed by a recovery (ctx.recovering) with a higher token.
[[nodiscard]] FencingCheck check_fenced_executions(std::span<const LedgerEntry> entries,
                                                   std::span<const WorkerFault> faults,
                                                   const std::set<std::int64_t>& killed_pids);

// Holds when every op's record is completed with the token and the result
// (effect_result) of its final execution. Fills `stored` (op -> stored
// result) when given.
[[nodiscard]] Invariant check_store_keeps_final(
    std::string name, idempotency::EffectStore& store, const idempotency::EffectType& type,
    std::span<const std::string> ops, const std::map<std::string, LedgerEntry>& final_execution,
    std::map<std::string, std::string>* stored = nullptr);

// Holds when every paused victim recorded a LeaseLost event (its events
// file) for the op and token it was paused on: its late commit was refused.
[[nodiscard]] Invariant check_pauses_refused(std::string name, std::span<const WorkerFault> faults,
                                             std::span<WorkerProcess* const> workers);

// Holds when every result in `stats` for an op in `stored` equals it.
[[nodiscard]] Invariant check_results_stored(std::string name, std::span<const WorkerStats> stats,
                                             const std::map<std::string, std::string>& stored);

}  // namespace prodsafe::chaos
