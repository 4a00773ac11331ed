// redis_hang: worker processes place orders while Redis stops answering
// without going away, the failure a timeout exists for:
//   paused      the embedded redis-server is SIGSTOPped (its sockets stay
//               open and connects still succeed: only replies stop), then
//               SIGCONTed;
//   blackholed  the workers reach Redis through a FaultProxy that black-holes
//               the link (connections stay open, bytes vanish), then restores
//               it. This one also runs against an external --redis.
// Each trial's faults last longer than any one call may (see below) and
// strike at evenly spaced points of the workers' progress. Each worker owns a
// partition of the orders and requests each twice, shuffled (a retry, a
// redelivery), so a record the hang lost shows up as a second execution.
//
// Workers: 200 ms command timeout, 100 ms connect timeout, reconnect backoff
// and pool checkout; 1 s lease (a claim whose reply the hang swallowed stays
// in progress until its lease ends); AlreadyInProgress is retried, never
// waited on inside a call. So one execute_once() call makes at most 5 Redis
// round trips (a journal flush, the claim, 3 commit attempts), each bounded
// by backoff + connect + command timeout, plus 150 ms of commit backoff and
// the effect: 2.4 s with slack. Each hang lasts 3 s, longer than that bound,
// so a call that waited for the reply instead of timing out breaks the bound.
//
// Invariants, per trial, and why: every call ended within that bound (the
// timeouts hold: a hung Redis must not hang its callers); every worker
// finished before the deadline (none hung; a hung one is killed and named)
// and exited cleanly (nothing given up, no unexpected error); after each
// hang, every worker answered a request again within a lease plus one call
// bound (recovery needs no restart); exactly once over the ledgers (nothing
// lost, nothing twice, nothing unexpected, tokens increase) and every answer
// is an execution's result (a hang must not cost correctness); and every
// hang reached the workers (store errors during it), else the trial proved
// nothing.
//
// Sizes: quick 3 workers, 150 orders, 2 hangs per trial (about 15 s in all);
// full 4 workers, 800 orders, 4 hangs per trial (about 30 s). With --redis
// only the blackholed trial runs (an external server cannot be SIGSTOPped).
#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "chaos/framework/order_workers.hpp"
#include "chaos/framework/scenario.hpp"
#include "prodsafe/embedded/redis_server.hpp"

namespace prodsafe::chaos {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kPattern = "hang-%d";
constexpr std::size_t kRepeat = 2;
constexpr milliseconds kHang{3000};

enum class Hang { kPause, kBlackhole };

struct Sizes {
  std::size_t workers;
  std::size_t orders;
  std::size_t hangs;
  milliseconds deadline;
};

struct HangRecord {
  SteadyClock::time_point began{};
  SteadyClock::time_point lifted{};
  std::uint64_t store_errors = 0;  // during the hang, all workers
  milliseconds slowest_recovery{0};
  std::vector<std::string> late{};  // workers that did not answer again in time
};

// Starts and lifts the hangs from wait_for_workers' tick: a hang starts at
// the next evenly spaced point of the workers' progress, lasts kHang, and the
// next one waits until every worker has answered again (or the recovery
// bound has passed).
class HangSchedule {
 public:
  HangSchedule(ScenarioContext& context, Hang kind, FaultProxy* proxy,
               std::span<WorkerProcess* const> workers, std::size_t planned,
               milliseconds recovery_bound)
      : context_(context),
        kind_(kind),
        proxy_(proxy),
        workers_(workers.begin(), workers.end()),
        planned_(planned),
        recovery_bound_(recovery_bound) {}

  void tick() {
    const auto now = SteadyClock::now();
    if (on_) {
      if (now - hangs_.back().began >= kHang) lift();
      return;
    }
    if (recovery_.watching()) {
      watch(now);
      return;
    }
    const auto [done, total] = context_.progress_of(workers_);
    if (hangs_.size() < planned_ && total > 0 &&
        done * (planned_ + 1) >= total * (hangs_.size() + 1))
      begin();
  }

  // Lifts a hang still on and closes the last recovery watch (workers gone).
  void finish() {
    if (on_) lift();
    if (recovery_.watching()) watch(SteadyClock::now());
  }

  [[nodiscard]] const std::vector<HangRecord>& hangs() const { return hangs_; }

 private:
  std::uint64_t store_errors() const {
    std::uint64_t errors = 0;
    for (WorkerProcess* worker : workers_) errors += worker->probe().store_errors;
    return errors;
  }

  void begin() {
    errors_before_ = store_errors();
    if (kind_ == Hang::kPause) {
      context_.redis_server()->pause();
    } else {
      proxy_->set_blackhole(true);
    }
    on_ = true;
    hangs_.push_back({.began = SteadyClock::now()});
  }

  void lift() {
    if (kind_ == Hang::kPause) {
      context_.redis_server()->resume();
    } else {
      proxy_->set_blackhole(false);
    }
    on_ = false;
    HangRecord& hang = hangs_.back();
    hang.lifted = SteadyClock::now();
    hang.store_errors = store_errors() - errors_before_;
    recovery_.start(workers_, hang.lifted);
  }

  // A worker has recovered once it answered a request after the hang (or ended).
  void watch(SteadyClock::time_point now) {
    HangRecord& hang = hangs_.back();
    recovery_.poll(now);
    hang.slowest_recovery = recovery_.slowest();
    if (recovery_.watching() && now - hang.lifted > recovery_bound_)
      hang.late = recovery_.give_up();
  }

  ScenarioContext& context_;
  const Hang kind_;
  FaultProxy* proxy_;
  const std::vector<WorkerProcess*> workers_;
  const std::size_t planned_;
  const milliseconds recovery_bound_;
  bool on_ = false;
  std::uint64_t errors_before_ = 0;
  RecoveryWatch recovery_;
  std::vector<HangRecord> hangs_;
};

void run_trial(ScenarioContext& context, const char* tag, Hang kind, const Sizes& sizes) {
  const Trial trial = context.trial(tag);
  FaultProxy* proxy = kind == Hang::kBlackhole ? &context.start_proxy() : nullptr;
  std::vector<WorkerSpec> specs =
      order_worker_specs(context, trial,
                         {.workers = sizes.workers,
                          .op_pattern = kPattern,
                          .orders = sizes.orders,
                          .repeat = kRepeat,
                          .lease = milliseconds(1000),
                          .redis_url = proxy != nullptr ? context.proxied_url() : ""});
  for (WorkerSpec& spec : specs) fail_fast(spec, milliseconds(200));
  const std::vector<WorkerProcess*> workers = spawn_all(context, specs);
  const milliseconds bound = call_bound(specs.front());
  const milliseconds recovery_bound = specs.front().lease + bound + milliseconds(100);
  context.note(fmt::format(
      "redis_hang {}: {} workers, {} orders requested {} times each, {} "
      "hangs of {} ms (a call may take {} ms)",
      tag, sizes.workers, sizes.orders, kRepeat, sizes.hangs, kHang.count(), bound.count()));

  const auto started = SteadyClock::now();
  HangSchedule schedule(context, kind, proxy, workers, sizes.hangs, recovery_bound);
  const std::vector<std::string> hung = context.wait_for_workers(workers, sizes.deadline, [&] {
    schedule.tick();
    const auto [done, total] = context.progress_of(workers);
    context.progress(fmt::format("redis_hang {}: {}/{} requests, {} hangs", tag, done, total,
                                 schedule.hangs().size()));
  });
  schedule.finish();
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
  if (proxy != nullptr) context.stop_proxy();

  const LedgerContents ledgers = context.read_ledgers(trial);
  const CheckReport report = check_exactly_once(numbered_op_ids(kPattern, sizes.orders), ledgers);
  const std::vector<WorkerStats> stats = ScenarioContext::read_stats(workers);
  context.add(report, trial);
  context.check(
      trial.row("no worker hung (all finished by the deadline)"), hung.size(),
      fmt::format("killed after {} s: {}", sizes.deadline.count() / 1000, first_few(hung)));
  context.add(check_workers_exited(trial.row("workers exited cleanly"), workers));
  context.add(check_results_executed(trial.row("every answer is an execution's result"), stats,
                                     ledgers.entries));

  std::vector<std::string> slow;
  for (const WorkerStats& worker : stats) {
    if (worker.max_call_latency_us > bound.count() * 1000)
      slow.push_back(fmt::format("{} {} ms", worker.name, worker.max_call_latency_us / 1000));
  }
  const WorkerStats total = chaos::total(stats);
  if (stats.size() < workers.size())
    slow.push_back(fmt::format("{} workers wrote no stats", workers.size() - stats.size()));
  context.check(
      trial.row(fmt::format("every call ended within its timeouts ({} ms)", bound.count())), slow);

  std::vector<std::string> late;
  std::vector<std::string> missed;
  milliseconds slowest_recovery{0};
  std::uint64_t hang_errors = 0;
  for (std::size_t i = 0; i < schedule.hangs().size(); ++i) {
    const HangRecord& hang = schedule.hangs()[i];
    for (const std::string& name : hang.late)
      late.push_back(fmt::format("hang {}: {}", i + 1, name));
    if (hang.store_errors == 0) missed.push_back(fmt::format("hang {}", i + 1));
    slowest_recovery = std::max(slowest_recovery, hang.slowest_recovery);
    hang_errors += hang.store_errors;
  }
  for (std::size_t i = schedule.hangs().size(); i < sizes.hangs; ++i)
    missed.push_back(fmt::format("hang {} never started", i + 1));
  context.check(trial.row(fmt::format("every worker answered again within {} ms of each hang",
                                      recovery_bound.count())),
                late);
  context.check(trial.row("every hang reached the workers"), missed);

  context.measure(
      trial.row("hangs"), schedule.hangs().size(),
      fmt::format("{} x {} ms: {} store errors during them; slowest call {} ms (bound {}), "
                  "slowest recovery {} ms; {} commits journaled, {} AlreadyInProgress retried, "
                  "{} claims recovered; {:.1f} s",
                  schedule.hangs().size(), kHang.count(), hang_errors,
                  total.max_call_latency_us / 1000, bound.count(), slowest_recovery.count(),
                  total.commit_pending, total.in_progress, total.recoveries, seconds));

  nlohmann::json hangs = nlohmann::json::array();
  for (const HangRecord& hang : schedule.hangs()) {
    hangs.push_back(
        {{"ms", std::chrono::duration_cast<milliseconds>(hang.lifted - hang.began).count()},
         {"store_errors", hang.store_errors},
         {"slowest_recovery_ms", hang.slowest_recovery.count()},
         {"late", hang.late}});
  }
  context.result().details[tag] = trial_details(total, hung, seconds, report,
                                                {{"workers", sizes.workers},
                                                 {"orders", sizes.orders},
                                                 {"repeat", kRepeat},
                                                 {"call_bound_ms", bound.count()},
                                                 {"recovery_bound_ms", recovery_bound.count()},
                                                 {"hangs", std::move(hangs)},
                                                 {"store_errors", total.store_errors},
                                                 {"commits_journaled", total.commit_pending}});
}

void run(ScenarioContext& context) {
  const Sizes sizes = context.quick() ? Sizes{3, 150, 2, milliseconds(60000)}
                                      : Sizes{4, 800, 4, milliseconds(180000)};
  if (context.embedded()) {
    context.start_redis();
    run_trial(context, "paused", Hang::kPause, sizes);
  } else {
    context.note(
        "redis_hang: the paused trial needs the embedded server (an external --redis "
        "cannot be SIGSTOPped); running the blackholed trial only");
    context.measure("paused: skipped", 0, "an external --redis cannot be SIGSTOPped");
  }
  run_trial(context, "blackholed", Hang::kBlackhole, sizes);
}

[[maybe_unused]] const bool registered = register_scenario(
    {"redis_hang",
     "Redis SIGSTOPped and its link black-holed while workers place orders: calls fail within "
     "their timeouts, no worker hangs, all recover, exactly once",
     run});

}  // namespace
}  // namespace prodsafe::chaos
