// network: worker processes place orders through a FaultProxy between them
// and Redis (the harness's stand-in for netem), which takes the network
// through one fault after another while they work:
//   clean      no fault: the throughput the others are compared with;
//   latency    every chunk held 25 ms each way (a 50 ms round trip, well
//              under the 250 ms command timeout);
//   resets     every open connection reset every 40 ms;
//   blackhole  the link drops every byte, longer than many command timeouts;
//   refuse     every connection reset, and new ones refused (Redis's host
//              down), briefly;
//   recovery   no fault, until every worker has finished.
// Each worker owns a partition of the orders and requests each twice,
// shuffled, with a 10 ms gap between requests, sized so that the workers
// are still busy when the last fault ends. Workers: 250 ms command timeout,
// 100 ms connect timeout, reconnect backoff and pool checkout, 1 s lease (a
// claim whose reply the network lost stays in progress until its lease
// ends), AlreadyInProgress retried, never waited on inside a call.
//
// Invariants, and why: exactly once over the ledgers (nothing lost, nothing
// twice, nothing unexpected, tokens increase) and every answer is an
// execution's result: a torn, reset or lost reply must never cost
// correctness; every worker finished by the deadline (none hung) and exited
// cleanly (nothing given up); latency under the timeouts causes no store
// error (a slow network is not a failure); resets, the black hole and the
// refusal each reached the workers (the workers reconnected after every
// round of resets, most of which hit idle pooled connections and cost no
// error; the black hole and the refusal caused store errors), else the
// phase proved nothing; and once the network is whole again every worker
// answers a request within a lease plus one call's worst case (clients
// reconnect by themselves). Measured: requests answered per second and store
// errors in each phase, what the proxy did, the slowest call.
//
// Sizes: quick 3 workers, phases of 1.5 s (refusal 1 s), about 15 s in all;
// full 4 workers, phases of 4 s (black hole 3 s, refusal 2 s), about 30 s.
// Runs against an external --redis too (the proxy goes in front of it).
#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "chaos/framework/order_workers.hpp"
#include "chaos/framework/scenario.hpp"

namespace prodsafe::chaos {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kPattern = "net-%d";
constexpr std::size_t kRepeat = 2;
constexpr milliseconds kRequestGap{10};
constexpr milliseconds kLatency{25};
constexpr milliseconds kResetEvery{40};

enum class Fault { kNone, kLatency, kResets, kBlackhole, kRefuse };

struct Phase {
  const char* name;
  Fault fault;
  milliseconds duration;
};

struct Sizes {
  std::size_t workers;
  std::vector<Phase> phases;  // the recovery phase follows them
  milliseconds deadline;
};

// Everything counted so far: the workers' probes and the proxy.
struct Snapshot {
  SteadyClock::time_point at{};
  std::uint64_t requests = 0;
  std::uint64_t store_errors = 0;
  FaultProxyStats proxy{};
};

class NetworkRun {
 public:
  NetworkRun(ScenarioContext& context, Sizes sizes)
      : context_(context),
        sizes_(std::move(sizes)),
        trial_(context.trial("network")),
        proxy_(context.start_proxy()) {}

  void run() {
    milliseconds phases_total{0};
    for (const Phase& phase : sizes_.phases) phases_total += phase.duration;
    // At most one request per gap: the workers cannot be done before the last fault.
    const std::size_t per_worker = static_cast<std::size_t>(phases_total / kRequestGap) / kRepeat;
    orders_ = per_worker * sizes_.workers;
    std::vector<WorkerSpec> specs = order_worker_specs(context_, trial_,
                                                       {.workers = sizes_.workers,
                                                        .op_pattern = kPattern,
                                                        .orders = orders_,
                                                        .repeat = kRepeat,
                                                        .effect = milliseconds(1),
                                                        .lease = milliseconds(1000),
                                                        .redis_url = context_.proxied_url()});
    for (WorkerSpec& spec : specs) {
      spec.request_gap = kRequestGap;
      fail_fast(spec, milliseconds(250));
    }
    workers_ = spawn_all(context_, specs);
    bound_ = call_bound(specs.front());
    recovery_bound_ = specs.front().lease + bound_ + milliseconds(100);
    context_.note(fmt::format(
        "network: {} workers, {} orders requested {} times each through a FaultProxy; phases {}",
        sizes_.workers, orders_, kRepeat, describe_phases()));

    wait_until_working();
    const auto started = SteadyClock::now();
    snapshots_.push_back(snapshot());
    for (const Phase& phase : sizes_.phases) {
      run_phase(phase);
      snapshots_.push_back(snapshot());
    }
    recovery_.start(workers_);
    hung_ = context_.wait_for_workers(workers_, sizes_.deadline, [&] {
      recovery_.poll();
      show_progress("recovery");
    });
    recovery_.poll();
    snapshots_.push_back(snapshot());
    seconds_ = std::chrono::duration<double>(SteadyClock::now() - started).count();
    context_.stop_proxy();
    check();
  }

 private:
  [[nodiscard]] std::string describe_phases() const {
    std::string text;
    for (const Phase& phase : sizes_.phases)
      text +=
          fmt::format("{}{} {} ms", text.empty() ? "" : ", ", phase.name, phase.duration.count());
    return text + ", recovery";
  }

  [[nodiscard]] Snapshot snapshot() const {
    Snapshot taken{.at = SteadyClock::now(), .proxy = proxy_.stats()};
    for (WorkerProcess* worker : workers_) {
      const ProbeSnapshot probe = worker->probe();
      taken.requests += probe.requests_done;
      taken.store_errors += probe.store_errors;
    }
    return taken;
  }

  // The clean phase starts once every worker has answered its first request.
  void wait_until_working() {
    const auto deadline = SteadyClock::now() + milliseconds(10000);
    while (SteadyClock::now() < deadline) {
      const bool working = std::all_of(workers_.begin(), workers_.end(), [](WorkerProcess* w) {
        return !w->running() || w->probe().requests_done > 0;
      });
      if (working) return;
      std::this_thread::sleep_for(milliseconds(5));
    }
  }

  void run_phase(const Phase& phase) {
    switch (phase.fault) {
      case Fault::kLatency:
        proxy_.set_latency(kLatency);
        break;
      case Fault::kBlackhole:
        proxy_.set_blackhole(true);
        break;
      case Fault::kRefuse:
        proxy_.set_refuse(true);
        proxy_.reset_all();  // open connections would keep working
        break;
      case Fault::kNone:
      case Fault::kResets:
        break;
    }
    const auto end = SteadyClock::now() + phase.duration;
    auto next_reset = SteadyClock::now() + kResetEvery;
    while (SteadyClock::now() < end) {
      if (phase.fault == Fault::kResets && SteadyClock::now() >= next_reset) {
        proxy_.reset_all();
        ++reset_rounds_;
        next_reset += kResetEvery;
      }
      show_progress(phase.name);
      std::this_thread::sleep_for(milliseconds(10));
    }
    proxy_.set_latency(milliseconds(0));
    proxy_.set_blackhole(false);
    proxy_.set_refuse(false);
  }

  void show_progress(std::string_view phase) {
    const auto [done, total] = context_.progress_of(workers_);
    context_.progress(fmt::format("network {}: {}/{} requests", phase, done, total));
  }

  void check();

  ScenarioContext& context_;
  const Sizes sizes_;
  const Trial trial_;
  FaultProxy& proxy_;
  std::vector<WorkerProcess*> workers_;
  std::size_t orders_ = 0;
  milliseconds bound_{0};
  milliseconds recovery_bound_{0};
  std::vector<Snapshot> snapshots_;  // before each phase, then after recovery
  std::uint64_t reset_rounds_ = 0;
  RecoveryWatch recovery_;  // after the network healed
  std::vector<std::string> hung_;
  double seconds_ = 0;
};

void NetworkRun::check() {
  const LedgerContents ledgers = context_.read_ledgers(trial_);
  const CheckReport report = check_exactly_once(numbered_op_ids(kPattern, orders_), ledgers);
  const std::vector<WorkerStats> stats = ScenarioContext::read_stats(workers_);
  context_.add(report, trial_);
  context_.check(trial_.row("no worker hung (all finished by the deadline)"), hung_);
  context_.add(check_workers_exited(trial_.row("workers exited cleanly"), workers_));
  context_.add(check_results_executed(trial_.row("every answer is an execution's result"), stats,
                                      ledgers.entries));

  nlohmann::json phases = nlohmann::json::array();
  std::vector<std::string> missed;
  std::uint64_t latency_errors = 0;
  for (std::size_t i = 0; i + 1 < snapshots_.size(); ++i) {
    const Snapshot& before = snapshots_[i];
    const Snapshot& after = snapshots_[i + 1];
    const bool recovery = i == sizes_.phases.size();
    const char* name = recovery ? "recovery" : sizes_.phases[i].name;
    const Fault fault = recovery ? Fault::kNone : sizes_.phases[i].fault;
    const std::uint64_t requests = after.requests - before.requests;
    const std::uint64_t errors = after.store_errors - before.store_errors;
    const double seconds = std::chrono::duration<double>(after.at - before.at).count();
    if (fault == Fault::kLatency) latency_errors = errors;
    // A reset idle connection costs no error (the pool sees it is dead), so
    // resets reached the workers when they reconnected after every round.
    const std::uint64_t accepted =
        after.proxy.connections_accepted - before.proxy.connections_accepted;
    if (fault == Fault::kResets && (reset_rounds_ == 0 || accepted < reset_rounds_))
      missed.push_back(
          fmt::format("resets ({} rounds, {} reconnections)", reset_rounds_, accepted));
    if ((fault == Fault::kBlackhole || fault == Fault::kRefuse) && errors == 0)
      missed.push_back(fmt::format("{} (no store error)", name));
    const std::uint64_t resets = after.proxy.resets - before.proxy.resets;
    const std::uint64_t refused =
        after.proxy.connections_refused - before.proxy.connections_refused;
    const std::uint64_t dropped = after.proxy.bytes_dropped - before.proxy.bytes_dropped;
    context_.measure(trial_.row(fmt::format("{}: requests answered", name)), requests,
                     fmt::format("{:.0f}/s over {:.1f} s; {} store errors; proxy: {} connections "
                                 "accepted, {} reset, {} refused, {} bytes dropped",
                                 seconds > 0 ? static_cast<double>(requests) / seconds : 0.0,
                                 seconds, errors, accepted, resets, refused, dropped));
    phases.push_back({{"phase", name},
                      {"seconds", seconds},
                      {"requests", requests},
                      {"store_errors", errors},
                      {"connections_accepted", accepted},
                      {"connections_reset", resets},
                      {"connections_refused", refused},
                      {"bytes_dropped", dropped}});
  }
  context_.check(
      trial_.row(fmt::format("latency ({} ms each way): no store error", kLatency.count())),
      latency_errors, fmt::format("{} store errors", latency_errors));
  context_.check(trial_.row("resets, black hole and refusal each reached the workers"), missed);
  const std::vector<std::string> late = recovery_.waiting();
  const milliseconds slowest_recovery = recovery_.slowest();
  context_.check(
      trial_.row(fmt::format("every worker answered within {} ms of the network "
                             "healing",
                             recovery_bound_.count())),
      late.size() + (slowest_recovery > recovery_bound_ ? 1 : 0),
      fmt::format("slowest {} ms; never: {}", slowest_recovery.count(), first_few(late)));

  const WorkerStats total = chaos::total(stats);
  context_.measure(
      trial_.row("workers"), total.store_errors,
      fmt::format("{} store errors retried, {} commits journaled, {} AlreadyInProgress retried, "
                  "{} claims recovered, {} commits refused; slowest call {} ms (worst case {} "
                  "ms); answered again {} ms after healing; {:.1f} s",
                  total.store_errors, total.commit_pending, total.in_progress, total.recoveries,
                  total.lease_lost, total.max_call_latency_us / 1000, bound_.count(),
                  slowest_recovery.count(), seconds_));
  context_.result().details = trial_details(total, hung_, seconds_, report,
                                            {{"workers", sizes_.workers},
                                             {"orders", orders_},
                                             {"repeat", kRepeat},
                                             {"phases", std::move(phases)},
                                             {"call_bound_ms", bound_.count()},
                                             {"slowest_recovery_ms", slowest_recovery.count()}});
}

void run(ScenarioContext& context) {
  const auto ms = [](int count) { return milliseconds(count); };
  Sizes sizes = context.quick() ? Sizes{3,
                                        {{"clean", Fault::kNone, ms(1500)},
                                         {"latency", Fault::kLatency, ms(1500)},
                                         {"resets", Fault::kResets, ms(1500)},
                                         {"blackhole", Fault::kBlackhole, ms(1500)},
                                         {"refuse", Fault::kRefuse, ms(1000)}},
                                        ms(60000)}
                                : Sizes{4,
                                        {{"clean", Fault::kNone, ms(4000)},
                                         {"latency", Fault::kLatency, ms(4000)},
                                         {"resets", Fault::kResets, ms(4000)},
                                         {"blackhole", Fault::kBlackhole, ms(3000)},
                                         {"refuse", Fault::kRefuse, ms(2000)}},
                                        ms(180000)};
  if (context.embedded()) context.start_redis();
  NetworkRun(context, std::move(sizes)).run();
}

[[maybe_unused]] const bool registered = register_scenario(
    {"network",
     "orders placed through a fault proxy: latency, connection resets, a black hole, refused "
     "connections; exactly once, no hang, throughput and errors per phase",
     run});

}  // namespace
}  // namespace prodsafe::chaos
