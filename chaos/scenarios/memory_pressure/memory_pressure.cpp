// memory_pressure: worker processes place orders while the Redis under them
// reaches maxmemory with noeviction (the policy prodsafe recommends) and is
// given memory again, over and over. While it is full every write is refused
// with OOM: a claim fails closed (the worker retries later), and a commit,
// whose effect already ran, must be retried and journaled, then committed
// once memory is freed, never dropped.
//
// Invariants: every order executed exactly once (none lost, none twice,
// nothing unexpected), every answer is an execution's result, workers exit
// cleanly, and the pressure reached the workers (OOM refusals seen).
// Measured: the commits journaled under pressure.
//
// Needs the embedded server (it reconfigures maxmemory): with --redis it is
// skipped.
#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "chaos/framework/order_workers.hpp"
#include "chaos/framework/scenario.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/info.hpp"

namespace prodsafe::chaos {
namespace {

using std::chrono::milliseconds;

constexpr const char* kPattern = "order-%d";
constexpr std::size_t kRepeat = 2;

struct Sizes {
  std::size_t workers;
  std::size_t orders;
  std::size_t squeezes;
  milliseconds deadline;
};

// Fills Redis up (maxmemory just under what it uses: every write is refused)
// at evenly spaced points of the workers' progress, for 100-600 ms each time:
// long enough, often, for a commit's three attempts to fail.
class Squeezer {
 public:
  Squeezer(ScenarioContext& context, redis::Client& admin, std::size_t planned)
      : context_(context), admin_(admin), planned_(planned) {}

  void tick(std::uint64_t done, std::uint64_t total) {
    if (squeezes_ >= planned_ || total == 0) return;
    if (done * (planned_ + 1) < total * (squeezes_ + 1)) return;
    ++squeezes_;
    const auto used = redis::parse_info(admin_.info("memory")).number("used_memory");
    const long long limit = std::max<long long>(1, used.value_or(1) - 1024);
    admin_.command({"CONFIG", "SET", "maxmemory", std::to_string(limit)});
    const milliseconds held(std::uniform_int_distribution<int>(100, 600)(context_.random()));
    std::this_thread::sleep_for(held);  // the pressure itself, not a wait for a state
    admin_.command({"CONFIG", "SET", "maxmemory", "0"});
    held_ += held;
  }

  [[nodiscard]] std::size_t squeezes() const { return squeezes_; }
  [[nodiscard]] milliseconds held() const { return held_; }

 private:
  ScenarioContext& context_;
  redis::Client& admin_;
  std::size_t planned_;
  std::size_t squeezes_ = 0;
  milliseconds held_{0};
};

void run(ScenarioContext& context) {
  if (!context.embedded()) {
    context.skip("needs the embedded server (it sets maxmemory); run without --redis");
    return;
  }
  const Sizes sizes = context.quick() ? Sizes{3, 240, 6, milliseconds(120000)}
                                      : Sizes{4, 2000, 25, milliseconds(900000)};
  const Trial trial = context.trial("noeviction");
  context.start_redis({"appendonly yes", "appendfsync always", "maxmemory-policy noeviction"});
  const std::shared_ptr<redis::Client> admin = context.client(trial);
  const auto started = std::chrono::steady_clock::now();

  std::vector<WorkerSpec> specs = order_worker_specs(context, trial,
                                                     {.workers = sizes.workers,
                                                      .op_pattern = kPattern,
                                                      .orders = sizes.orders,
                                                      .repeat = kRepeat,
                                                      .effect = milliseconds(5),
                                                      .lease = milliseconds(5000)});
  for (WorkerSpec& spec : specs) spec.wait_timeout = milliseconds(10000);
  const std::vector<WorkerProcess*> workers = spawn_all(context, specs);
  context.note(fmt::format(
      "memory_pressure: {} workers, {} orders requested {} times each, Redis filled to its "
      "maxmemory {} times",
      sizes.workers, sizes.orders, kRepeat, sizes.squeezes));

  Squeezer squeezer(context, *admin, sizes.squeezes);
  const auto hung = context.wait_for_workers(workers, sizes.deadline, [&] {
    const auto [done, total] = context.progress_of(workers);
    squeezer.tick(done, total);
    context.progress(fmt::format("memory_pressure: {}/{} requests, {} squeezes", done, total,
                                 squeezer.squeezes()));
  });
  admin->command({"CONFIG", "SET", "maxmemory", "0"});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  const LedgerContents ledgers = context.read_ledgers(trial);
  const CheckReport report = check_exactly_once(numbered_op_ids(kPattern, sizes.orders), ledgers);
  const std::vector<WorkerStats> stats = ScenarioContext::read_stats(workers);
  const WorkerStats total = chaos::total(stats);

  context.add(report, trial);
  context.add(check_workers_exited(trial.row("workers exited cleanly"), workers));
  context.add(check_results_executed(trial.row("every answer is an execution's result"), stats,
                                     ledgers.entries));
  context.check(trial.row("the pressure reached the workers"), total.store_errors == 0 ? 1 : 0,
                "no worker saw a refusal: the squeezes missed");
  context.measure(trial.row("commits journaled under OOM, then committed"), total.commit_pending,
                  fmt::format("{} squeezes ({} ms full in all); workers: {} refusals retried, {} "
                              "results journaled, {} left in a journal at exit; {:.1f} s",
                              squeezer.squeezes(), squeezer.held().count(), total.store_errors,
                              total.commit_pending, total.journal_left, seconds));
  context.result().details["noeviction"] =
      trial_details(total, hung, seconds, report,
                    {{"workers", sizes.workers},
                     {"orders", sizes.orders},
                     {"repeat", kRepeat},
                     {"squeezes", squeezer.squeezes()},
                     {"full_ms", squeezer.held().count()},
                     {"refusals", total.store_errors},
                     {"commits_journaled", total.commit_pending}});
}

[[maybe_unused]] const bool registered = register_scenario(
    {"memory_pressure",
     "orders placed while Redis reaches maxmemory (noeviction) and is freed again; exactly once, "
     "nothing lost, journaled commits measured",
     run});

}  // namespace
}  // namespace prodsafe::chaos
