#include "chaos/worker/worker.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "chaos/history/ledger.hpp"
#include "chaos/worker/probe.hpp"
#include "prodsafe/core/backoff.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/retry/executor.hpp"

namespace prodsafe::chaos {
namespace {

namespace fs = std::filesystem;
using idempotency::EffectContext;
using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kErrorsKept = 10;

// The downstream (the ledger) failed: the worker cannot record executions
// any more and must stop, not retry.
class LedgerFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Whether a failed request is asked again: superseded (LeaseLost), held by
// another worker (AlreadyInProgress), its claim acknowledged by too few
// replicas (ReplicationShortfall, with wait_replicas: the effect did not
// run), or the store failed (unreachable, timed out, or a retryable reply
// such as LOADING or OOM). Anything else is unexpected.
bool retried(const std::exception& error) {
  if (dynamic_cast<const LeaseLost*>(&error) != nullptr ||
      dynamic_cast<const AlreadyInProgress*>(&error) != nullptr ||
      dynamic_cast<const ReplicationShortfall*>(&error) != nullptr ||
      dynamic_cast<const StoreUnavailable*>(&error) != nullptr)
    return true;
  const auto* reply = dynamic_cast<const ReplyError*>(&error);
  return reply != nullptr && reply->retryable();
}

// Every failed request waits the spec's backoff (retry_backoff_initial,
// doubling to retry_backoff_max, no jitter), AlreadyInProgress included: the
// worker's own pacing, not the holder's hint. No retry starts past
// op_deadline after the first attempt.
retry::RetryPolicy request_policy(const WorkerSpec& spec) {
  return retry::RetryPolicy{
      .max_attempts = std::numeric_limits<int>::max(),
      .base_delay = spec.retry_backoff_initial,
      .max_delay = spec.retry_backoff_max,
      .jitter = Jitter::kNone,
      .max_total_time = spec.op_deadline,
      .retry_on = [](const std::exception& error) { return retried(error); },
      .retry_after = [](const std::exception&) { return std::optional<milliseconds>(); },
      .seed = spec.seed,
      .job_type = "chaos_worker"};
}

std::int64_t nanoseconds_of(SteadyClock::time_point at) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
}

SteadyClock::time_point steady_at(std::int64_t ns) {
  return SteadyClock::time_point(std::chrono::nanoseconds(ns));
}

void write_stats(const fs::path& path, const WorkerStats& stats) {
  const fs::path temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << nlohmann::json(stats).dump(1) << "\n";
    if (!out) throw IoError(fmt::format("cannot write {}", temporary.string()));
  }
  fs::rename(temporary, path);
}

class Worker {
 public:
  explicit Worker(const WorkerSpec& spec)
      : spec_(spec),
        pid_(::getpid()),
        type_(spec.effect_type),
        ledger_(ledger_path(spec.ledger_directory, fmt::format("{}-{}", spec.name, pid_))),
        retry_policy_(request_policy(spec)) {
    if (fs::exists(probe_path(spec))) probe_ = WorkerProbe::open(probe_path(spec));
    events_fd_ = ::open(events_path(spec).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (events_fd_ < 0) {
      throw IoError(fmt::format("cannot open {}", events_path(spec).string()));
    }
    stats_.name = spec.name;
    stats_.pid = pid_;
    if (!spec.break_guard) {
      auto client = std::make_shared<redis::Client>(
          spec.redis_url, redis::Options{.connect_timeout = spec.connect_timeout,
                                         .command_timeout = spec.command_timeout,
                                         .pool_size = 4,
                                         .pool_checkout_timeout = spec.pool_checkout_timeout,
                                         .reconnect_backoff_initial = milliseconds(10),
                                         .reconnect_backoff_max = spec.reconnect_backoff_max,
                                         .key_prefix = spec.key_prefix,
                                         .tls = spec.tls});
      // The workers' WrapperOptions, built from the spec; durability: WAIT
      // for spec.wait_replicas replicas after each claim and commit.
      wrapper_ = std::make_unique<idempotency::SideEffectWrapper>(
          std::make_shared<idempotency::RedisEffectStore>(std::move(client)),
          idempotency::WrapperOptions{
              .ttl = spec.ttl,
              .lease = spec.lease,
              .renew_leases = spec.renew_leases,
              .in_progress = spec.wait_in_progress ? idempotency::InProgressPolicy::kWait
                                                   : idempotency::InProgressPolicy::kThrow,
              .wait_timeout = spec.wait_timeout,
              .wait_poll_max = spec.wait_poll_max,
              .journal_directory = spec.journal_directory,
              .durability = {.replicas = spec.wait_replicas, .timeout = milliseconds(250)}});
    }
  }

  ~Worker() {
    if (events_fd_ >= 0) ::close(events_fd_);
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  int run() {
    const auto started = SteadyClock::now();
    const std::vector<std::size_t> plan = request_plan(spec_);
    probe_.set_requests_total(plan.size());
    probe_.enter(WorkerPhase::kRequesting);
    const auto start = spec_.start_at_steady_ns > 0 ? steady_at(spec_.start_at_steady_ns) : started;
    std::this_thread::sleep_until(start);
    for (std::size_t i = 0; i < plan.size() && !ledger_failed_; ++i) {
      if (spec_.burst_size > 0 && i % spec_.burst_size == 0) {
        std::this_thread::sleep_until(start + spec_.burst_interval *
                                                  static_cast<long>(i / spec_.burst_size));
      } else if (i > 0 && spec_.request_gap.count() > 0) {
        std::this_thread::sleep_for(spec_.request_gap);
      }
      request(plan[i]);
      probe_.count_request();
    }
    probe_.enter(WorkerPhase::kFlushing);
    flush_journal();
    stats_.elapsed_seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
    write_stats(stats_path(spec_), stats_);
    probe_.enter(WorkerPhase::kDone);
    if (stats_.unexpected_errors > 0) return kWorkerFailed;
    return stats_.gave_up > 0 ? kWorkerGaveUp : kWorkerOk;
  }

 private:
  std::string effect(const EffectContext& context, std::size_t number) {
    const auto op = static_cast<std::int64_t>(number);
    probe_.enter(WorkerPhase::kEffectRunning, op, context.fencing_token);
    if (spec_.effect_before_ledger.count() > 0)
      std::this_thread::sleep_for(spec_.effect_before_ledger);
    try {
      ledger_.append(LedgerEntry{.op_id = op_id(spec_, number),
                                 .fencing_token = context.fencing_token,
                                 .worker = spec_.name,
                                 .recovering = context.recovering});
    } catch (const std::exception& error) {
      ledger_failed_ = true;
      throw LedgerFailure(error.what());
    }
    probe_.enter(WorkerPhase::kEffectWritten, op, context.fencing_token);
    probe_.count_execution();
    if (spec_.effect_after_ledger.count() > 0)
      std::this_thread::sleep_for(spec_.effect_after_ledger);
    probe_.enter(WorkerPhase::kCommitting, op, context.fencing_token);
    return effect_result(spec_.name, pid_, context.fencing_token);
  }

  void answered(const std::string& op, std::string result) {
    ++stats_.requests;
    const auto [it, inserted] = stats_.results.try_emplace(op, result);
    if (!inserted && it->second != result) {
      ++stats_.inconsistent_results;
      it->second = std::move(result);
    }
  }

  void unexpected(const std::string& op, const std::exception& error) {
    ++stats_.unexpected_errors;
    if (stats_.errors.size() < kErrorsKept)
      stats_.errors.push_back(fmt::format("{}: {}", op, error.what()));
    logger()->error("{}: {}: unexpected error: {}", spec_.name, op, error.what());
  }

  // Asks for one op until it is answered, given up at op_deadline, or fails
  // unexpectedly: retry::run with the backoff of the spec (no jitter).
  void request(std::size_t number) {
    const std::string op = op_id(spec_, number);
    try {
      retry::run(retry_policy_, [&] { attempt(op, number); });
    } catch (const std::exception& error) {
      if (!retried(error)) {
        unexpected(op, error);
        return;
      }
      ++stats_.gave_up;
      if (stats_.errors.size() < kErrorsKept)
        stats_.errors.push_back(
            fmt::format("{}: given up after {} ms", op, spec_.op_deadline.count()));
    }
  }

  // One execute_once() call. What it throws is counted here, then left to
  // the retry loop.
  void attempt(const std::string& op, std::size_t number) {
    probe_.enter(WorkerPhase::kRequesting);
    const auto call_started = SteadyClock::now();
    try {
      if (wrapper_ == nullptr) {  // break_guard: no claim, no commit
        answered(op, effect(EffectContext{.key = op}, number));
        ++stats_.executed;
      } else {
        const auto outcome = wrapper_->execute_once(
            type_, op, [&](const EffectContext& context) { return effect(context, number); });
        if (outcome.executed) ++stats_.executed;
        if (!outcome.executed) ++stats_.duplicates;
        if (outcome.recovered) ++stats_.recoveries;
        if (outcome.commit_pending) ++stats_.commit_pending;
        answered(op, outcome.result);
        if (spec_.record_answers) {
          const char* kind = !outcome.executed        ? "duplicate"
                             : outcome.commit_pending ? "journaled"
                                                      : "committed";
          record_event(kind, op, outcome.fencing_token, call_started);
        }
      }
    } catch (const LeaseLost& error) {
      // Superseded: ask again, to learn the result that stands.
      ++stats_.lease_lost;
      stats_.lease_lost_ops.push_back({op, error.token()});
      record_event("lease_lost", op, error.token());
      note_latency(call_started);
      throw;
    } catch (const AlreadyInProgress&) {
      ++stats_.in_progress;
      note_latency(call_started);
      throw;
    } catch (const ReplicationShortfall&) {
      // The claim reached too few replicas and was not used: ask again.
      ++stats_.replication_shortfalls;
      if (spec_.record_answers) record_event("short_of_replicas", op, 0, call_started);
      note_latency(call_started);
      throw;
    } catch (const std::exception& error) {
      if (retried(error)) {  // the store failed: unreachable, timed out, LOADING, OOM
        ++stats_.store_errors;
        probe_.count_store_error();
        note_latency(call_started);
      }
      throw;
    }
    note_latency(call_started);
  }

  // One write(2) per line: a later SIGKILL cannot take it back. With
  // `call_started`, the call's start and (now) its end.
  void record_event(std::string_view event, const std::string& op, std::uint64_t token,
                    std::optional<SteadyClock::time_point> call_started = std::nullopt) {
    nlohmann::json json{{"event", event}, {"op", op}, {"token", token}};
    if (call_started) {
      json["started_ns"] = nanoseconds_of(*call_started);
      json["ended_ns"] = nanoseconds_of(SteadyClock::now());
    }
    const std::string line = json.dump() + "\n";
    if (::write(events_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      logger()->error("{}: cannot record the event {} of {}", spec_.name, event, op);
  }

  void note_latency(SteadyClock::time_point started) {
    const auto took =
        std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started);
    stats_.max_call_latency_us = std::max<std::int64_t>(stats_.max_call_latency_us, took.count());
  }

  void flush_journal() {
    if (wrapper_ == nullptr) return;
    const auto deadline = SteadyClock::now() + spec_.exit_flush_deadline;
    Backoff backoff(Jitter::kNone, spec_.retry_backoff_initial, spec_.retry_backoff_max);
    for (int retry = 0; wrapper_->flush_journal() > 0 && SteadyClock::now() < deadline; ++retry)
      std::this_thread::sleep_for(backoff.next(retry));
    stats_.journal_left = wrapper_->journal_pending();
  }

  const WorkerSpec& spec_;
  const std::int64_t pid_;
  const idempotency::EffectType type_;
  LedgerWriter ledger_;
  const retry::RetryPolicy retry_policy_;
  WorkerProbe probe_;
  std::unique_ptr<idempotency::SideEffectWrapper> wrapper_;
  WorkerStats stats_;
  int events_fd_ = -1;
  bool ledger_failed_ = false;
};

std::string missing_field(const WorkerSpec& spec) {
  if (spec.name.empty()) return "name";
  if (spec.ledger_directory.empty()) return "ledger_directory";
  if (spec.files_directory.empty()) return "files_directory";
  if (!spec.break_guard && spec.redis_url.empty()) return "redis_url";
  if (!spec.break_guard && spec.journal_directory.empty()) return "journal_directory";
  if (spec.retry_backoff_initial < milliseconds(1) ||
      spec.retry_backoff_max < spec.retry_backoff_initial ||
      spec.retry_backoff_max > kMaxBackoffDelay)
    return "valid retry_backoff_initial_ms and retry_backoff_max_ms";
  return {};
}

}  // namespace

int run_worker(const WorkerSpec& spec) {
  // A write to a connection Redis reset must fail with EPIPE, not kill us.
  ::signal(SIGPIPE, SIG_IGN);
  if (spec.parent_pid != 0 && ::getppid() != spec.parent_pid) return kWorkerOrphaned;
  if (const std::string missing = missing_field(spec); !missing.empty()) {
    std::cerr << "chaos-worker: the spec has no " << missing << "\n";
    return kWorkerBadSpec;
  }
  if (spec.wait_replicas < 0) {
    std::cerr << "chaos-worker: wait_replicas " << spec.wait_replicas
              << " is negative; give 0 (no WAIT) or the replicas to wait for\n";
    return kWorkerBadSpec;
  }
  logger()->set_level(spdlog::level::warn);
  try {
    Worker worker(spec);
    return worker.run();
  } catch (const std::exception& error) {
    std::cerr << "chaos-worker " << spec.name << ": " << error.what() << "\n";
    return kWorkerFailed;
  }
}

int run_worker_from_file(const std::filesystem::path& spec_file) {
  WorkerSpec spec;
  try {
    std::ifstream in(spec_file);
    if (!in) throw std::runtime_error("cannot open the file");
    spec = nlohmann::json::parse(in).get<WorkerSpec>();
  } catch (const std::exception& error) {
    std::cerr << "chaos-worker: cannot read the spec " << spec_file.string() << ": " << error.what()
              << "\n";
    return kWorkerBadSpec;
  }
  return run_worker(spec);
}

}  // namespace prodsafe::chaos
