// kill_redis: worker processes place distinct orders through the idempotency
// wrapper while the redis-server under them is SIGKILLed and restarted on the
// same data directory, and their connections are reset through a FaultProxy.
//
// Each worker owns a partition of the orders and requests each of its orders
// twice, at random points of the run (a retry, a redelivered message), so a
// restart that lost the record of an order shows up as a second execution.
// Every Redis call has a timeout; a request that fails is retried with
// backoff (the order must not be lost); a commit that cannot reach Redis goes
// to the workers' journal and is committed when Redis is back.
//
// Trials, one fresh embedded redis-server each:
//   always    appendonly yes, appendfsync always. Invariants: every order
//             executed exactly once (none lost, none twice, nothing
//             unexpected), fencing tokens increase for any re-execution,
//             every request answered with a result some execution produced,
//             workers exit cleanly, and the faults reached the workers.
//   everysec  appendonly yes, appendfsync everysec; and
//   off       no persistence: nothing lost, nothing unexpected, workers exit
//             cleanly (invariants); the duplicates the restarts cause are
//             MEASURED, as evidence for docs/guarantees.md, not violations.
//
// Needs the embedded server (it kills Redis): with --redis it is skipped.
#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "chaos/framework/order_workers.hpp"
#include "chaos/framework/scenario.hpp"
#include "prodsafe/embedded/redis_server.hpp"

namespace prodsafe::chaos {
namespace {

using std::chrono::milliseconds;

struct Mode {
  const char* tag;
  std::vector<std::string> config;
  bool durable;  // exactly-once is an invariant, not a measurement
};

struct Sizes {
  std::size_t workers;
  std::size_t orders;
  std::size_t kills;
  std::size_t resets;
  milliseconds deadline;
};

struct Faults {
  std::size_t kills = 0;
  std::size_t resets = 0;
  std::size_t connections_reset = 0;
  milliseconds downtime{0};
};

constexpr const char* kPattern = "order-%d";
constexpr std::size_t kRepeat = 2;

// Injects the planned faults at evenly spaced points of the workers'
// progress (a Redis kill stalls them, so the faults cannot all bunch up at
// the end), kills and resets in a random order.
class FaultSchedule {
 public:
  FaultSchedule(ScenarioContext& context, FaultProxy& proxy, const Sizes& sizes)
      : context_(context), proxy_(proxy) {
    plan_.assign(sizes.kills, true);
    plan_.insert(plan_.end(), sizes.resets, false);
    std::shuffle(plan_.begin(), plan_.end(), context.random());
  }

  void tick(std::uint64_t done, std::uint64_t total) {
    if (next_ >= plan_.size() || total == 0) return;
    if (done * (plan_.size() + 1) < total * (next_ + 1)) return;
    if (plan_[next_++]) {
      embedded::RedisServer& server = *context_.redis_server();
      server.kill();
      const milliseconds down(std::uniform_int_distribution<int>(0, 150)(context_.random()));
      std::this_thread::sleep_for(down);  // the outage itself, not a wait for a state
      server.restart();
      faults_.downtime += down;
      ++faults_.kills;
    } else {
      faults_.connections_reset += proxy_.reset_all();
      ++faults_.resets;
    }
  }

  [[nodiscard]] const Faults& faults() const { return faults_; }

 private:
  ScenarioContext& context_;
  FaultProxy& proxy_;
  std::vector<bool> plan_;
  std::size_t next_ = 0;
  Faults faults_;
};

void run_trial(ScenarioContext& context, const Mode& mode, const Sizes& sizes) {
  const Trial trial = context.trial(mode.tag);
  context.start_redis(mode.config);
  FaultProxy& proxy = context.start_proxy();
  const auto started = std::chrono::steady_clock::now();

  std::vector<WorkerSpec> specs = order_worker_specs(context, trial,
                                                     {.workers = sizes.workers,
                                                      .op_pattern = kPattern,
                                                      .orders = sizes.orders,
                                                      .repeat = kRepeat,
                                                      .redis_url = context.proxied_url()});
  for (WorkerSpec& spec : specs) spec.wait_timeout = milliseconds(10000);
  const std::vector<WorkerProcess*> workers = spawn_all(context, specs);
  context.note(
      fmt::format("kill_redis {}: {} workers, {} orders requested {} times each, {} Redis "
                  "kills and {} connection resets planned",
                  mode.tag, sizes.workers, sizes.orders, kRepeat, sizes.kills, sizes.resets));

  FaultSchedule schedule(context, proxy, sizes);
  const auto hung = context.wait_for_workers(workers, sizes.deadline, [&] {
    const auto [done, total] = context.progress_of(workers);
    schedule.tick(done, total);
    const Faults& faults = schedule.faults();
    context.progress(fmt::format("kill_redis {}: {}/{} requests, {} kills, {} resets", mode.tag,
                                 done, total, faults.kills, faults.resets));
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  context.stop_proxy();

  const LedgerContents ledgers = context.read_ledgers(trial);
  const CheckReport report = check_exactly_once(numbered_op_ids(kPattern, sizes.orders), ledgers);
  const std::vector<WorkerStats> stats = ScenarioContext::read_stats(workers);
  const WorkerStats total = chaos::total(stats);
  const Faults& faults = schedule.faults();

  for (const Invariant& row : report.invariants) {
    const bool measured_only =
        !mode.durable && (row.name == kNoOpDuplicated || row.name == kFencingTokensIncrease);
    if (!measured_only)
      context.add(Invariant{trial.row(row.name), row.held, row.count, row.detail});
  }
  context.add(check_workers_exited(trial.row("workers exited cleanly"), workers));
  context.add(check_results_executed(trial.row("every answer is an execution's result"), stats,
                                     ledgers.entries));
  if (mode.durable) {
    context.check(trial.row("faults reached the workers"), total.store_errors == 0 ? 1 : 0,
                  "no worker saw a store error: the faults missed");
  } else {
    const Invariant* duplicated = report.find(kNoOpDuplicated);
    const Invariant* fencing = report.find(kFencingTokensIncrease);
    context.measure(trial.row("orders executed twice (lost records)"), duplicated->count,
                    duplicated->detail);
    context.measure(trial.row("re-executions without a higher token"), fencing->count,
                    fencing->detail);
  }
  context.measure(
      trial.row("faults"), faults.kills + faults.resets,
      fmt::format("{} Redis kills ({} ms down in all), {} resets ({} connections); workers: {} "
                  "store errors retried, {} commits journaled, {} own claims recovered, slowest "
                  "call {} ms; {:.1f} s",
                  faults.kills, faults.downtime.count(), faults.resets, faults.connections_reset,
                  total.store_errors, total.commit_pending, total.recoveries,
                  total.max_call_latency_us / 1000, seconds));

  context.result().details[mode.tag] =
      trial_details(total, hung, seconds, report,
                    {{"config", mode.config},
                     {"workers", sizes.workers},
                     {"orders", sizes.orders},
                     {"repeat", kRepeat},
                     {"redis_kills", faults.kills},
                     {"connection_resets", faults.resets},
                     {"connections_reset", faults.connections_reset},
                     {"downtime_ms", faults.downtime.count()},
                     {"requests_answered", total.requests},
                     {"store_errors", total.store_errors},
                     {"commits_journaled", total.commit_pending}});
}

void run(ScenarioContext& context) {
  if (!context.embedded()) {
    context.skip("needs the embedded server (it SIGKILLs and restarts Redis); run without --redis");
    return;
  }
  const Sizes sizes = context.quick() ? Sizes{3, 300, 8, 8, milliseconds(120000)}
                                      : Sizes{4, 3000, 20, 20, milliseconds(900000)};
  const std::vector<Mode> modes = {
      {"always", {"appendonly yes", "appendfsync always"}, true},
      {"everysec", {"appendonly yes", "appendfsync everysec"}, false},
      {"off", {"appendonly no"}, false},
  };
  for (const Mode& mode : modes) run_trial(context, mode, sizes);
}

[[maybe_unused]] const bool registered = register_scenario(
    {"kill_redis",
     "orders placed by worker processes while Redis is SIGKILLed/restarted and connections "
     "reset; exactly once with appendfsync always, duplicates measured with everysec and off",
     run});

}  // namespace
}  // namespace prodsafe::chaos
