#include "chaos/framework/failover_trial.hpp"

#include <algorithm>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "chaos/framework/order_workers.hpp"
#include "chaos/history/failover_history.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/idempotency/effect_type.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/redis/client.hpp"

namespace prodsafe::chaos {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kPattern = "order-%d";
constexpr std::size_t kRepeat = 2;
// Between two rounds, the workers run at least this long on a whole topology.
constexpr milliseconds kSettle{1000};
// How long reading one record from the final master may keep failing.
constexpr milliseconds kReadWithin{20000};

std::int64_t steady_ns(Clock::time_point at) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
}

// Every order's record on the final master (an order without one is absent),
// retrying while the topology still settles.
std::map<std::string, FinalRecord> read_final_store(const std::string& url, const Trial& trial,
                                                    std::span<const std::string> ops) {
  auto client =
      std::make_shared<redis::Client>(url, redis::Options{.connect_timeout = milliseconds(1000),
                                                          .command_timeout = milliseconds(2000),
                                                          .pool_size = 2,
                                                          .key_prefix = trial.key_prefix});
  idempotency::RedisEffectStore store(client);
  std::map<std::string, FinalRecord> records;
  for (const std::string& op : ops) {
    const std::string key = idempotency::effect_key(idempotency::EffectType::ORDER_PLACEMENT, op);
    const auto give_up = Clock::now() + kReadWithin;
    for (;;) {
      try {
        if (const auto record = store.inspect(key))
          records[op] = FinalRecord{.state = record->state, .token = record->token};
        break;
      } catch (const Error& error) {
        if (!error.retryable() || Clock::now() > give_up) throw;
        std::this_thread::sleep_for(milliseconds(100));
      }
    }
  }
  return records;
}

// "of 300 claims: order-7 token 12 (final: completed 15), ..."
std::string with_examples(std::string text, std::span<const std::string> examples) {
  if (examples.empty()) return text;
  return fmt::format("{}: {}", text, first_few(examples));
}

// "2 fault(s); first success after 1804, 2230 ms; promotion seen after 1650,
// 2210 ms; claims lost 0, 3; commits lost 0, 3" (and, with a WAIT, "; claims
// short of replicas 0, 2")
std::string resume_detail(std::span<const FaultRound> faults, const FailoverFigures& figures,
                          const std::string& kind, bool waits, std::int64_t* slowest) {
  std::vector<std::string> times;
  std::vector<std::string> promoted;
  std::vector<std::size_t> claims;
  std::vector<std::size_t> commits;
  std::vector<std::size_t> short_of_replicas;
  for (std::size_t i = 0; i < faults.size(); ++i) {
    if (faults[i].kind != kind) continue;
    const std::optional<std::int64_t>& resume = figures.resume_ms[i];
    times.push_back(resume ? fmt::format("{}", *resume) : "never");
    promoted.push_back(fmt::format("{}", faults[i].promoted.count()));
    claims.push_back(figures.claims_lost_by_fault[i]);
    commits.push_back(figures.commits_lost_by_fault[i]);
    short_of_replicas.push_back(figures.shortfalls_by_fault[i]);
    if (resume) *slowest = std::max(*slowest, *resume);
  }
  std::string detail = fmt::format(
      "{} fault(s); first success after {} ms; promotion seen after {} ms; claims lost {}; "
      "commits lost {}",
      times.size(), fmt::join(times, ", "), fmt::join(promoted, ", "), fmt::join(claims, ", "),
      fmt::join(commits, ", "));
  if (waits)
    detail += fmt::format("; claims short of replicas {}", fmt::join(short_of_replicas, ", "));
  return detail;
}

}  // namespace

FailoverTrial::FailoverTrial(ScenarioContext& context, const std::string& tag, FailoverFleet fleet)
    : context_(context), trial_(context.trial(tag)), fleet_(std::move(fleet)) {}

void FailoverTrial::run(std::size_t rounds,
                        const std::function<FaultRound(std::size_t round)>& inject,
                        milliseconds deadline) {
  planned_ = rounds;
  std::vector<WorkerSpec> specs = order_worker_specs(context_, trial_,
                                                     {.workers = fleet_.workers,
                                                      .op_pattern = kPattern,
                                                      .orders = fleet_.orders,
                                                      .repeat = kRepeat,
                                                      .redis_url = fleet_.redis_url});
  for (WorkerSpec& spec : specs) {
    spec.wait_timeout = milliseconds(10000);
    spec.request_gap = fleet_.request_gap;
    spec.record_answers = true;
    // Durability: the one place it reaches the workers (see FailoverFleet).
    spec.wait_replicas = fleet_.wait_replicas;
  }
  const auto started = Clock::now();
  workers_ = spawn_all(context_, specs);
  context_.note(fmt::format("{}: {} workers, {} orders requested {} times each, {} rounds planned",
                            trial_.tag, fleet_.workers, fleet_.orders, kRepeat, rounds));
  auto quiet_since = started;
  hung_ = context_.wait_for_workers(workers_, deadline, [&] {
    const auto [done, total] = context_.progress_of(workers_);
    const std::size_t next = faults_.size();
    if (next < rounds && total > 0 && done * (rounds + 1) >= total * next &&
        Clock::now() - quiet_since >= kSettle) {
      faults_.push_back(inject(next));
      const FaultRound& fault = faults_.back();
      context_.note(fmt::format("{}: round {}: {}; promoted after {} ms, whole after {} ms",
                                trial_.tag, next + 1, fault.kind, fault.promoted.count(),
                                fault.healed.count()));
      quiet_since = Clock::now();
    }
    context_.progress(fmt::format("{}: {}/{} requests, {}/{} rounds", trial_.tag, done, total,
                                  faults_.size(), rounds));
  });
  seconds_ = std::chrono::duration<double>(Clock::now() - started).count();
}

void FailoverTrial::report(nlohmann::json own) {
  const std::vector<std::string> ops = numbered_op_ids(kPattern, fleet_.orders);
  const LedgerContents ledgers = context_.read_ledgers(trial_);
  const CheckReport check = check_exactly_once(ops, ledgers);
  const std::vector<WorkerStats> stats = ScenarioContext::read_stats(workers_);
  const WorkerStats total = chaos::total(stats);
  std::vector<WorkerEvent> answers;
  for (WorkerProcess* worker : workers_) {
    for (WorkerEvent& event : worker->events()) answers.push_back(std::move(event));
  }
  std::vector<FaultTime> fault_times;
  for (const FaultRound& fault : faults_) {
    FaultTime time{.at_ns = steady_ns(fault.at), .healed_ns = steady_ns(fault.at + fault.healed)};
    if (fault.affects) {
      time.affects = [this, &fault](std::string_view op) {
        return fault.affects(trial_.key_prefix +
                             idempotency::effect_key(idempotency::EffectType::ORDER_PLACEMENT, op));
      };
    }
    fault_times.push_back(std::move(time));
  }
  const FailoverFigures figures = failover_figures(
      ledgers.entries, answers, read_final_store(fleet_.redis_url, trial_, ops), fault_times);

  for (const Invariant& row : check.invariants) {
    if (row.name != kNoOpDuplicated && row.name != kFencingTokensIncrease)
      context_.add(Invariant{trial_.row(row.name), row.held, row.count, row.detail});
  }
  context_.add(check_workers_exited(trial_.row("workers exited cleanly"), workers_));
  context_.add(check_results_executed(trial_.row("every answer is an execution's result"), stats,
                                      ledgers.entries));
  context_.check(trial_.row("faults reached the workers"), total.store_errors == 0 ? 1 : 0,
                 "no worker saw a store error: the faults missed");
  context_.check(trial_.row("every planned round injected"), planned_ - faults_.size(),
                 fmt::format("{} of {} rounds: the workers ended first", faults_.size(), planned_));

  const Invariant* duplicated = check.find(kNoOpDuplicated);
  const Invariant* fencing = check.find(kFencingTokensIncrease);
  context_.measure(trial_.row("orders executed twice"), duplicated->count, duplicated->detail);
  context_.measure(trial_.row("re-executions without a higher token"), fencing->count,
                   fencing->detail);
  context_.measure(trial_.row("acknowledged claims lost"), figures.claims_lost.size(),
                   with_examples(fmt::format("of {} claims", figures.claims), figures.claims_lost));
  context_.measure(
      trial_.row("acknowledged commits lost"), figures.commits_lost.size(),
      with_examples(fmt::format("of {} acknowledged commits", figures.commits_acknowledged),
                    figures.commits_lost));
  std::vector<std::string> kinds;
  for (const FaultRound& fault : faults_) {
    if (std::find(kinds.begin(), kinds.end(), fault.kind) == kinds.end())
      kinds.push_back(fault.kind);
  }
  nlohmann::json resume = nlohmann::json::object();
  for (const std::string& kind : kinds) {
    std::int64_t slowest = 0;
    const std::string detail =
        resume_detail(faults_, figures, kind, fleet_.wait_replicas > 0, &slowest);
    context_.measure(trial_.row(fmt::format("ms to resume after {} (slowest)", kind)),
                     static_cast<std::size_t>(slowest), detail);
    resume[kind] = detail;
  }
  if (fleet_.wait_replicas > 0) {
    context_.measure(
        trial_.row("claims short of replicas (retried)"), total.replication_shortfalls,
        fmt::format("calls whose claim fewer than {} replica(s) acknowledged within the WAIT: "
                    "the effect not run, the claim released, the order asked again; {} after "
                    "the last round",
                    fleet_.wait_replicas, figures.shortfalls_by_fault.back()));
  }
  context_.measure(
      trial_.row("faults"), faults_.size(),
      fmt::format("workers: {} store errors retried, {} claims short of replicas "
                  "retried, {} commits journaled, {} results inconsistent, slowest "
                  "call {} ms; {:.1f} s",
                  total.store_errors, total.replication_shortfalls, total.commit_pending,
                  total.inconsistent_results, total.max_call_latency_us / 1000, seconds_));

  nlohmann::json rounds = nlohmann::json::array();
  for (std::size_t i = 0; i < faults_.size(); ++i) {
    rounds.push_back({{"kind", faults_[i].kind},
                      {"promoted_ms", faults_[i].promoted.count()},
                      {"healed_ms", faults_[i].healed.count()},
                      {"resume_ms", figures.resume_ms[i] ? nlohmann::json(*figures.resume_ms[i])
                                                         : nlohmann::json(nullptr)},
                      {"claims_lost", figures.claims_lost_by_fault[i]},
                      {"commits_lost", figures.commits_lost_by_fault[i]},
                      {"short_of_replicas", figures.shortfalls_by_fault[i]}});
  }
  own.update({{"workers", fleet_.workers},
              {"orders", fleet_.orders},
              {"repeat", kRepeat},
              {"wait_replicas", fleet_.wait_replicas},
              {"rounds", std::move(rounds)},
              {"claims_lost_after_the_last_round", figures.claims_lost_by_fault.back()},
              {"claims", figures.claims},
              {"claims_lost", figures.claims_lost.size()},
              {"commits_acknowledged", figures.commits_acknowledged},
              {"commits_lost", figures.commits_lost.size()},
              {"resume", resume},
              {"store_errors", total.store_errors},
              {"replication_shortfalls", total.replication_shortfalls},
              {"commits_journaled", total.commit_pending},
              {"inconsistent_results", total.inconsistent_results}});
  context_.result().details[trial_.tag] = trial_details(total, hung_, seconds_, check, own);
}

}  // namespace prodsafe::chaos
