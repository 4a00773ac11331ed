// retry_race: several worker processes request the SAME operations, as a
// fleet does when a message is redelivered, a client retries, or a cron job
// fires on every node. No fault is injected: the race itself is the fault.
//
// Trials (one Redis; each trial its own keys and ledgers):
//   simultaneous  every worker starts at the same instant (a shared
//                 CLOCK_MONOTONIC deadline) and walks the ops in the same
//                 order, so every op is claimed by all of them at once;
//   staggered     worker i starts i * 2 ms after worker 0 (while 0's effect
//                 runs or just after it committed), and asks for each op
//                 twice in a row (a client retry);
//   bursts        the ops come in bursts that all workers start together,
//                 each in its own shuffled order.
// Half the workers wait for a running effect (InProgressPolicy::kWait), the
// other half get AlreadyInProgress and retry later.
//
// Invariants, per trial: exactly one execution per op (none lost, none
// twice, nothing unexpected, tokens increase), every worker answered every
// op, every worker got the same result for each op, and that result is the
// one execution's (worker, pid, token); workers exit cleanly.
//
// Runs against an external --redis too (it needs no Redis fault).
#include <fmt/format.h>

#include "chaos/framework/scenario.hpp"

namespace prodsafe::chaos {
namespace {

using std::chrono::milliseconds;

constexpr const char* kPattern = "race-%d";

enum class Shape { kSimultaneous, kStaggered, kBursts };

struct Sizes {
  std::size_t workers;
  std::size_t ops;
  milliseconds deadline;
};

std::int64_t steady_ns_from_now(milliseconds delay) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             (std::chrono::steady_clock::now() + delay).time_since_epoch())
      .count();
}

Invariant check_every_op_answered(const std::string& name, std::span<const WorkerStats> stats,
                                  std::span<const std::string> ops, std::size_t workers) {
  std::vector<std::string> missing;
  for (const WorkerStats& worker : stats) {
    for (const std::string& op : ops) {
      if (!worker.results.contains(op)) missing.push_back(fmt::format("{} of {}", op, worker.name));
    }
  }
  if (stats.size() < workers) {
    missing.push_back(
        fmt::format("{} of {} workers wrote no stats", workers - stats.size(), workers));
  }
  return held_unless(name, missing);
}

void run_trial(ScenarioContext& context, const char* tag, Shape shape, const Sizes& sizes) {
  const Trial trial = context.trial(tag);
  // Started after every worker has had time to start and connect.
  const std::int64_t start = steady_ns_from_now(milliseconds(context.quick() ? 600 : 1000));
  std::vector<WorkerProcess*> workers;
  for (std::size_t w = 0; w < sizes.workers; ++w) {
    WorkerSpec spec = context.worker_spec(trial, fmt::format("w{}", w + 1));
    spec.op_pattern = kPattern;
    spec.op_count = sizes.ops;
    spec.effect_before_ledger = milliseconds(1);
    spec.effect_after_ledger = milliseconds(2);
    spec.lease = milliseconds(5000);
    spec.wait_in_progress = w % 2 == 0;
    spec.start_at_steady_ns = start;
    switch (shape) {
      case Shape::kSimultaneous:
        break;
      case Shape::kStaggered:
        spec.start_at_steady_ns += static_cast<std::int64_t>(w) * 2'000'000;
        spec.repeat = 2;
        break;
      case Shape::kBursts:
        spec.burst_size = 8;
        spec.burst_interval = milliseconds(40);
        spec.shuffle = true;
        break;
    }
    workers.push_back(&context.spawn(spec));
  }
  context.note(fmt::format("retry_race {}: {} workers request the same {} ops", tag, sizes.workers,
                           sizes.ops));
  const auto started = std::chrono::steady_clock::now();
  const auto hung = context.wait_for_workers(workers, sizes.deadline, [&] {
    const auto [done, total] = context.progress_of(workers);
    context.progress(fmt::format("retry_race {}: {}/{} requests answered", tag, done, total));
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  const std::vector<std::string> ops = numbered_op_ids(kPattern, sizes.ops);
  const LedgerContents ledgers = context.read_ledgers(trial);
  const CheckReport report = check_exactly_once(ops, ledgers);
  const std::vector<WorkerStats> stats = ScenarioContext::read_stats(workers);
  context.add(report, trial);
  context.add(check_workers_exited(trial.row("workers exited cleanly"), workers));
  context.add(check_every_op_answered(trial.row("every worker answered every op"), stats, ops,
                                      sizes.workers));
  context.add(check_results_agree(trial.row("every worker got the same result"), stats));
  context.add(
      check_results_executed(trial.row("that result is the execution's"), stats, ledgers.entries));

  const WorkerStats total = chaos::total(stats);
  context.measure(trial.row("contention"), total.duplicates,
                  fmt::format("{} requests: {} executed, {} answered as duplicates, {} "
                              "AlreadyInProgress retried; slowest call {} ms; {:.1f} s",
                              total.requests, total.executed, total.duplicates, total.in_progress,
                              total.max_call_latency_us / 1000, seconds));
  context.result().details[tag] = trial_details(total, hung, seconds, report,
                                                {{"workers", sizes.workers},
                                                 {"ops", sizes.ops},
                                                 {"requests", total.requests},
                                                 {"executed", total.executed},
                                                 {"duplicates", total.duplicates},
                                                 {"in_progress_retried", total.in_progress}});
}

void run(ScenarioContext& context) {
  const Sizes sizes =
      context.quick() ? Sizes{6, 120, milliseconds(120000)} : Sizes{8, 600, milliseconds(600000)};
  if (context.embedded()) context.start_redis({"appendonly yes", "appendfsync always"});
  run_trial(context, "simultaneous", Shape::kSimultaneous, sizes);
  run_trial(context, "staggered", Shape::kStaggered, sizes);
  run_trial(context, "bursts", Shape::kBursts, sizes);
}

[[maybe_unused]] const bool registered = register_scenario(
    {"retry_race",
     "worker processes request the same ops at once, staggered and in bursts; exactly one "
     "execution per op and the same result for every worker",
     run});

}  // namespace
}  // namespace prodsafe::chaos
