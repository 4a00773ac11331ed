// The chaos suite's worker process: places a list of operations through
// SideEffectWrapper against the Redis under test. Each execution of an effect
// appends one entry to the worker's own fsynced ledger (chaos/ledger.hpp)
// before the effect returns: the ledger is the downstream system, kept in
// files, out of reach of the faults. The scenarios run it as a separate
// process (`prodsafe chaos-worker --spec FILE`), so that it can be killed and
// paused like a real worker.
//
// A worker never hangs: every Redis call has a timeout, a request that keeps
// failing is retried with backoff until op_deadline and then given up
// (counted, exit status 3), and the wrapper's waits are bounded.
//
// Thread safety: run_worker() runs one worker; call it once per process.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "prodsafe/redis/options.hpp"

namespace prodsafe::chaos {

using std::chrono::milliseconds;

// What one worker process does. Written as JSON by the scenario (durations
// as "<field>_ms" integers); fields missing from the JSON keep these defaults.
struct WorkerSpec {
  // Unique within a scenario run; names the ledger, stats and probe files.
  std::string name{};
  // The Redis under test (often a FaultProxy in front of it). Required.
  std::string redis_url{};
  // redis::Options::tls for redis_url. Default: none.
  redis::TlsOptions tls{};
  // redis::Options::key_prefix: keeps runs apart on a shared server. Default: empty.
  std::string key_prefix{};
  // The effect type the ops are placed as. Default: ORDER_PLACEMENT.
  std::string effect_type = "ORDER_PLACEMENT";

  // The ops: op_pattern (one %d or {}) numbered op_first .. op_first +
  // op_count - 1; of those, the ones whose 0-based index i has
  // i % partition_count == partition_index; each requested `repeat` times.
  // Defaults: "order-%d", 0, 0 (no ops), 1, 0, 1.
  std::string op_pattern = "order-%d";
  std::size_t op_first = 0;
  std::size_t op_count = 0;
  std::size_t partition_count = 1;
  std::size_t partition_index = 0;
  std::size_t repeat = 1;
  // Shuffle the requests (within each burst when bursts are on), seeded by
  // `seed`. Default: false, in op order (all repeats of an op together).
  bool shuffle = false;
  std::uint64_t seed = 1;

  // When to send: not before CLOCK_MONOTONIC (shared by the processes of one
  // boot) reaches start_at_steady_ns (0: at once); in bursts of burst_size
  // requests, burst k not before start + k * burst_interval (0: no bursts);
  // request_gap between two requests. Defaults: 0, 0, 0 ms, 0 ms.
  std::int64_t start_at_steady_ns = 0;
  std::size_t burst_size = 0;
  milliseconds burst_interval{0};
  milliseconds request_gap{0};

  // The effect sleeps effect_before_ledger, appends its ledger entry, then
  // sleeps effect_after_ledger (the downstream's acknowledgement), so that a
  // fault can hit before or after the downstream acted. Defaults: 0 ms.
  milliseconds effect_before_ledger{0};
  milliseconds effect_after_ledger{0};

  // WrapperOptions: ttl, lease, renew_leases, in_progress (wait: kWait, else
  // kThrow and the worker retries later), wait_timeout, wait_poll_max,
  // journal_directory (required: the scenario's, shared by its workers).
  // Defaults: 72 h, 5 s, true, true, 30 s, 100 ms.
  milliseconds ttl{std::chrono::hours(72)};
  milliseconds lease{5000};
  bool renew_leases = true;
  bool wait_in_progress = true;
  milliseconds wait_timeout{30000};
  milliseconds wait_poll_max{100};
  std::string journal_directory{};
  // Durability across failover: WrapperOptions::durability, WAIT for this
  // many replicas (250 ms at most) after each claim and commit. THE place a
  // durability setting reaches the workers; the WrapperOptions in worker.cpp
  // are built from the spec. A claim that falls short (ReplicationShortfall:
  // the effect did not run) is retried like a store error and counted in
  // WorkerStats::replication_shortfalls; a commit that falls short is retried
  // by the wrapper, then journaled (commit_pending). A negative value is
  // refused (exit kWorkerBadSpec, saying so). Default: 0, no WAIT.
  int wait_replicas = 0;

  // redis::Options: command, connect and pool checkout timeouts, the longest
  // reconnect backoff. Defaults: 500 ms, 500 ms, 500 ms, 200 ms.
  milliseconds command_timeout{500};
  milliseconds connect_timeout{500};
  milliseconds pool_checkout_timeout{500};
  milliseconds reconnect_backoff_max{200};

  // A request that fails (Redis down, AlreadyInProgress, LeaseLost,
  // ReplicationShortfall) is retried by retry::run after a backoff from
  // retry_backoff_initial doubling to retry_backoff_max (no jitter), as long
  // as the retry would start within op_deadline of its first attempt; then
  // it is given up. At exit, journaled
  // results are flushed for up to exit_flush_deadline, with the same backoff.
  // 1 ms <= retry_backoff_initial <= retry_backoff_max <= 24 h.
  // Defaults: 10 ms, 250 ms, 120 s, 30 s.
  milliseconds retry_backoff_initial{10};
  milliseconds retry_backoff_max{250};
  milliseconds op_deadline{120000};
  milliseconds exit_flush_deadline{30000};

  // Record every answered request in the events file (WorkerEvent
  // "committed", "journaled" or "duplicate", with the call's start and end),
  // for the failover scenarios' figures. Default: false.
  bool record_answers = false;

  // Where the ledger (<name>-<pid>.ledger) goes; only ledgers belong there.
  // Required.
  std::string ledger_directory{};
  // Where the stats (<name>.stats.json) and the probe (<name>.probe) are.
  // Required.
  std::string files_directory{};

  // Test-only: skip the claim and run the effect directly (fencing token 0),
  // to prove that the checker catches what an unguarded fleet does.
  // Default: false.
  bool break_guard = false;
  // The worker exits when its parent is not this process (0: no check).
  std::int64_t parent_pid = 0;
};

void to_json(nlohmann::json& json, const WorkerSpec& spec);
void from_json(const nlohmann::json& json, WorkerSpec& spec);

// The ops a spec requests, in request order (repeats and shuffle applied).
[[nodiscard]] std::vector<std::size_t> request_plan(const WorkerSpec& spec);
// The id of op number `number` (op_first + index): op_pattern filled in.
[[nodiscard]] std::string op_id(const WorkerSpec& spec, std::size_t number);

// <files_directory>/<name>.stats.json, <files_directory>/<name>.probe and
// <files_directory>/<name>.events.
[[nodiscard]] std::filesystem::path stats_path(const WorkerSpec& spec);
[[nodiscard]] std::filesystem::path probe_path(const WorkerSpec& spec);
[[nodiscard]] std::filesystem::path events_path(const WorkerSpec& spec);

// The result an execution returns (and the store caches): who ran it, under
// which token. Every worker that asks for the op must get this same string.
[[nodiscard]] std::string effect_result(std::string_view worker, std::int64_t pid,
                                        std::uint64_t token);

// A commit refused with LeaseLost: the op and the superseded token.
struct LeaseLostReport {
  std::string op{};
  std::uint64_t token = 0;
};

// What a worker reports the moment it happens, one JSON line each in its
// events file, so that the report outlives a later SIGKILL (the stats are
// written only at exit): {"event":"lease_lost","op":"order-7","token":1}.
// With WorkerSpec::record_answers, also every answered request: "committed"
// (it ran the effect here and the store acknowledged the commit),
// "journaled" (it ran the effect; the commit went to the journal) or
// "duplicate" (answered with the result of the execution under `token`);
// and every call whose claim too few replicas acknowledged,
// "short_of_replicas" (token 0: the effect did not run); each with the
// execute_once() call's start and end (CLOCK_MONOTONIC ns).
struct WorkerEvent {
  // "lease_lost", "committed", "journaled", "duplicate", "short_of_replicas"
  std::string event{};
  std::string op{};
  std::uint64_t token = 0;
  std::int64_t started_ns = 0;
  std::int64_t ended_ns = 0;
};

// The events a worker's file holds (none when it has no file); a torn last
// line is skipped.
[[nodiscard]] std::vector<WorkerEvent> read_events(const std::filesystem::path& file);

// What a worker reports at exit (<name>.stats.json).
struct WorkerStats {
  std::string name{};
  std::int64_t pid = 0;
  std::uint64_t requests = 0;        // requests answered (executed or duplicate)
  std::uint64_t executed = 0;        // answered by running the effect here
  std::uint64_t duplicates = 0;      // answered with an earlier execution's result
  std::uint64_t recoveries = 0;      // executions that took over an expired lease
  std::uint64_t store_errors = 0;    // Redis unreachable or timed out: retried
  std::uint64_t in_progress = 0;     // AlreadyInProgress: retried later
  std::uint64_t lease_lost = 0;      // commits refused: another worker took over
  std::uint64_t commit_pending = 0;  // results journaled because the commit failed
  std::uint64_t journal_left = 0;    // journaled results still uncommitted at exit
  std::uint64_t gave_up = 0;         // requests abandoned at op_deadline
  std::uint64_t unexpected_errors = 0;
  // Calls whose claim fewer replicas acknowledged than wait_replicas
  // (ReplicationShortfall: the effect did not run): retried.
  std::uint64_t replication_shortfalls = 0;
  // Requests of one op answered with different results by this worker.
  std::uint64_t inconsistent_results = 0;
  std::int64_t max_call_latency_us = 0;  // the slowest execute_once call
  double elapsed_seconds = 0;
  // Per op, the result this worker got (the last one, when repeated).
  std::map<std::string, std::string> results{};
  std::vector<LeaseLostReport> lease_lost_ops{};
  // The first few unexpected errors, for people.
  std::vector<std::string> errors{};
};

void to_json(nlohmann::json& json, const WorkerStats& stats);
void from_json(const nlohmann::json& json, WorkerStats& stats);

// The fleet's stats: every count summed, the slowest call and the longest
// run (no name, pid, results or errors).
[[nodiscard]] WorkerStats total(std::span<const WorkerStats> stats);

// Exit statuses of a worker process.
inline constexpr int kWorkerOk = 0;
inline constexpr int kWorkerFailed = 1;    // an unexpected error (see its stats and log)
inline constexpr int kWorkerBadSpec = 2;   // the spec cannot be read
inline constexpr int kWorkerGaveUp = 3;    // some request hit op_deadline
inline constexpr int kWorkerOrphaned = 4;  // its parent is gone

// Runs the worker described by `spec` to the end; returns its exit status.
int run_worker(const WorkerSpec& spec);
// Reads the spec file and runs it (`prodsafe chaos-worker --spec FILE`).
int run_worker_from_file(const std::filesystem::path& spec_file);

}  // namespace prodsafe::chaos
