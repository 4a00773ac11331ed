// slow_effects: effects that run longer than their lease and their record's
// TTL, requested by several worker processes at once. The record must stay
// alive under its live holder: if it expired mid-run, a second worker would
// claim it anew and run the effect beside the live one.
//
// Every worker requests every slow operation, in its own order, and retries
// while another holds it; each effect takes 2.5 leases and more than the TTL.
//
// Trials, one fresh embedded redis-server each (appendfsync always):
//   outlive  renewals on, nothing deleted. Invariants: no second execution
//            while another one runs (by the ledgers' times), none lost,
//            every answer an execution's result, workers exit cleanly. A
//            record lives `ttl` after its last renewal, so a request arriving
//            later than that after an effect finished runs it again: that is
//            measured, not a violation.
//   deleted  the same, while the scenario deletes in-progress records under
//            their live holders (an operator's DEL, an eviction). Invariants:
//            nothing lost, nothing unexpected, every answer an execution's
//            result, workers exit cleanly, and every second execution began
//            within a renewal period (lease/3, plus scheduling slack) of a
//            deletion of its record: the holder's renewal writes the record
//            back, after which nobody else can claim it. Measured: how many
//            operations ran twice in those windows.
//
// Needs the embedded server: with --redis it is skipped.
#include <algorithm>
#include <map>
#include <thread>

#include <fmt/format.h>

#include "chaos/framework/order_workers.hpp"
#include "chaos/framework/scenario.hpp"
#include "prodsafe/redis/client.hpp"

namespace prodsafe::chaos {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kPattern = "slow-%d";
constexpr milliseconds kLease{600};
constexpr milliseconds kTtl{1000};
constexpr milliseconds kEffect{1500};  // 2.5 leases, 1.5 TTLs
// A renewal is due every lease/3; it then needs a round trip, on two busy cores.
constexpr milliseconds kRenewalWindow = kLease / 3 + milliseconds(300);

// Deletes `key` only while it is in progress: a completed record that
// vanished would rightly let the effect run again, which is not this test.
constexpr const char* kDeleteInProgress =
    "if redis.call('TYPE', KEYS[1])['ok'] == 'hash' and "
    "redis.call('HGET', KEYS[1], 'state') == 'in_progress' then "
    "return redis.call('DEL', KEYS[1]) end return 0";

struct Sizes {
  std::size_t workers;
  std::size_t ops;
  std::size_t deletions;
  milliseconds deadline;
};

std::int64_t steady_ns(SteadyClock::time_point time) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}

void run_trial(ScenarioContext& context, const Sizes& sizes, bool delete_records) {
  const Trial trial = context.trial(delete_records ? "deleted" : "outlive");
  context.start_redis({"appendonly yes", "appendfsync always"});
  const std::shared_ptr<redis::Client> admin = context.client(trial);
  const auto started = SteadyClock::now();

  std::vector<WorkerSpec> specs;
  for (std::size_t w = 0; w < sizes.workers; ++w) {
    WorkerSpec spec = context.worker_spec(trial, fmt::format("w{}", w + 1));
    spec.op_pattern = kPattern;
    spec.op_count = sizes.ops;
    spec.shuffle = true;
    spec.effect_after_ledger = kEffect;  // acts at once, then is slow to finish
    spec.lease = kLease;
    spec.ttl = kTtl;
    spec.renew_leases = true;
    spec.wait_in_progress = false;  // AlreadyInProgress: ask again soon
    spec.retry_backoff_max = milliseconds(100);
    specs.push_back(std::move(spec));
  }
  const std::vector<WorkerProcess*> workers = spawn_all(context, specs);
  context.note(fmt::format(
      "slow_effects {}: {} workers each requesting the same {} effects of {} ms (lease {} ms, "
      "ttl {} ms){}",
      trial.tag, sizes.workers, sizes.ops, kEffect.count(), kLease.count(), kTtl.count(),
      delete_records ? fmt::format(", up to {} in-progress records deleted", sizes.deletions)
                     : ""));

  // op id -> when its in-progress record was deleted (CLOCK_MONOTONIC ns,
  // the clock of the workers' ledgers).
  std::map<std::string, std::vector<std::int64_t>> deletions;
  std::size_t deleted = 0;
  SteadyClock::time_point next_deletion = started + kLease;
  const auto hung = context.wait_for_workers(workers, sizes.deadline, [&] {
    const auto now = SteadyClock::now();
    if (delete_records && deleted < sizes.deletions && now >= next_deletion) {
      next_deletion =
          now + milliseconds(std::uniform_int_distribution<int>(200, 500)(context.random()));
      const std::size_t op =
          std::uniform_int_distribution<std::size_t>(0, sizes.ops - 1)(context.random());
      const std::string id = fmt::format("slow-{}", op);
      const std::string key = admin->key("effect:ORDER_PLACEMENT:" + id);
      if (admin->command({"EVAL", kDeleteInProgress, "1", key}).integer() == 1) {
        deletions[id].push_back(steady_ns(SteadyClock::now()));
        ++deleted;
      }
    }
    const auto [done, total] = context.progress_of(workers);
    context.progress(fmt::format("slow_effects {}: {}/{} requests, {} deletions", trial.tag, done,
                                 total, deleted));
  });
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();

  const LedgerContents ledgers = context.read_ledgers(trial);
  const CheckReport report = check_exactly_once(numbered_op_ids(kPattern, sizes.ops), ledgers);
  const std::vector<WorkerStats> stats = ScenarioContext::read_stats(workers);
  const WorkerStats total = chaos::total(stats);

  // A record lives `ttl` after its last renewal, so a request that comes
  // later than that after an effect finished rightly runs it again: what must
  // never happen is a second execution while another one still runs.
  for (const Invariant& row : report.invariants) {
    if (row.name == kNoOpDuplicated) continue;
    context.add(Invariant{trial.row(row.name), row.held, row.count, row.detail});
  }
  context.add(check_workers_exited(trial.row("workers exited cleanly"), workers));
  context.add(check_results_executed(trial.row("every answer is an execution's result"), stats,
                                     ledgers.entries));

  // Executions of one op, by when they began (each acts at once, then runs
  // kEffect before it commits).
  const auto effect_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(kEffect).count();
  const auto window_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(kRenewalWindow).count();
  std::map<std::string, std::vector<const LedgerEntry*>> by_op;
  for (const LedgerEntry& entry : ledgers.entries) by_op[entry.op_id].push_back(&entry);
  std::size_t again = 0;
  std::size_t concurrent = 0;
  std::vector<std::string> unexcused;
  for (auto& [op, executions] : by_op) {
    std::sort(executions.begin(), executions.end(), [](const LedgerEntry* a, const LedgerEntry* b) {
      return a->steady_ns < b->steady_ns;
    });
    for (std::size_t i = 1; i < executions.size(); ++i) {
      const std::int64_t began = executions[i]->steady_ns;
      const bool overlaps = std::any_of(
          executions.begin(), executions.begin() + i,
          [&](const LedgerEntry* earlier) { return began < earlier->steady_ns + effect_ns; });
      if (!overlaps) {
        ++again;
        continue;
      }
      ++concurrent;
      const auto& times = deletions[op];
      const bool excused = std::any_of(times.begin(), times.end(), [&](std::int64_t at) {
        return at <= began && began - at <= window_ns;
      });
      if (!excused) {
        unexcused.push_back(fmt::format("{} by {} (token {}) {} ms after the first began", op,
                                        executions[i]->worker, executions[i]->fencing_token,
                                        (began - executions[0]->steady_ns) / 1000000));
      }
    }
  }
  context.check(
      trial.row(delete_records ? "no second execution beside a live one, but in a deletion's window"
                               : "no second execution beside a live one"),
      unexcused);
  if (delete_records) {
    context.measure(trial.row("second executions in a deletion's window"), concurrent,
                    fmt::format("{} in-progress records deleted under live holders", deleted));
  }
  context.measure(
      trial.row("ops run again after their record's TTL ended"), again,
      fmt::format("the TTL ({} ms) is shorter than the effects on purpose", kTtl.count()));
  context.measure(trial.row("renewals and retries"), total.in_progress,
                  fmt::format("{} requests answered AlreadyInProgress and retried, {} executions, "
                              "{} LeaseLost; {:.1f} s",
                              total.in_progress, total.executed, total.lease_lost, seconds));
  context.result().details[trial.tag] = trial_details(total, hung, seconds, report,
                                                      {{"workers", sizes.workers},
                                                       {"ops", sizes.ops},
                                                       {"effect_ms", kEffect.count()},
                                                       {"lease_ms", kLease.count()},
                                                       {"ttl_ms", kTtl.count()},
                                                       {"deletions", deleted},
                                                       {"concurrent_executions", concurrent},
                                                       {"executed_again_after_ttl", again}});
}

void run(ScenarioContext& context) {
  if (!context.embedded()) {
    context.skip("needs the embedded server; run without --redis");
    return;
  }
  const Sizes sizes = context.quick() ? Sizes{3, 6, 4, milliseconds(120000)}
                                      : Sizes{4, 40, 30, milliseconds(600000)};
  run_trial(context, sizes, false);
  run_trial(context, sizes, true);
}

[[maybe_unused]] const bool registered = register_scenario(
    {"slow_effects",
     "effects longer than their lease and TTL, requested by every worker at once, with records "
     "deleted under live holders; no second execution while a holder lives",
     run});

}  // namespace
}  // namespace prodsafe::chaos
