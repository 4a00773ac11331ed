#include "chaos/worker/worker.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "chaos/history/ledger.hpp"
#include "chaos/worker/probe.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "prodsafe/redis/client.hpp"

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
        ledger_(ledger_path(spec.ledger_directory, fmt::format("{}-{}", spec.name, pid_))) {
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
                                         .key_prefix = spec.key_prefix});
      wrapper_ = std::make_unique<idempotency::SideEffectWrapper>(
          std::make_shared<idempotency::RedisEffectStore>(std::move(client)),
          idempotency::WrapperOptions{.ttl = spec.ttl,
                                      .lease = spec.lease,
                                      .renew_leases = spec.renew_leases,
                                      .in_progress = spec.wait_in_progress
                                                         ? idempotency::InProgressPolicy::kWait
                                                         : idempotency::InProgressPolicy::kThrow,
                                      .wait_timeout = spec.wait_timeout,
                                      .wait_poll_max = spec.wait_poll_max,
                                      .journal_directory = spec.journal_directory});
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
  // unexpectedly.
  void request(std::size_t number) {
    const std::string op = op_id(spec_, number);
    const auto deadline = SteadyClock::now() + spec_.op_deadline;
    milliseconds backoff = spec_.retry_backoff_initial;
    for (;;) {
      probe_.enter(WorkerPhase::kRequesting);
      std::optional<milliseconds> wait;
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
        }
        note_latency(call_started);
        return;
      } catch (const LeaseLost& error) {
        // Superseded: ask again, to learn the result that stands.
        ++stats_.lease_lost;
        stats_.lease_lost_ops.push_back({op, error.token()});
        record_event("lease_lost", op, error.token());
        wait = milliseconds(0);
      } catch (const AlreadyInProgress& error) {
        ++stats_.in_progress;
        wait = std::min(backoff, std::max(milliseconds(1), error.retry_after()));
      } catch (const StoreUnavailable&) {
        ++stats_.store_errors;
        probe_.count_store_error();
      } catch (const ReplyError& error) {
        if (!error.retryable()) {
          unexpected(op, error);
          return;
        }
        ++stats_.store_errors;
        probe_.count_store_error();
      } catch (const std::exception& error) {
        unexpected(op, error);
        return;
      }
      note_latency(call_started);
      if (SteadyClock::now() >= deadline) {
        ++stats_.gave_up;
        if (stats_.errors.size() < kErrorsKept)
          stats_.errors.push_back(
              fmt::format("{}: given up after {} ms", op, spec_.op_deadline.count()));
        return;
      }
      std::this_thread::sleep_for(wait.value_or(backoff));
      if (!wait) backoff = std::min(backoff * 2, spec_.retry_backoff_max);
    }
  }

  // One write(2) per line: a later SIGKILL cannot take it back.
  void record_event(std::string_view event, const std::string& op, std::uint64_t token) {
    const std::string line =
        nlohmann::json{{"event", event}, {"op", op}, {"token", token}}.dump() + "\n";
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
    milliseconds backoff = spec_.retry_backoff_initial;
    while (wrapper_->flush_journal() > 0 && SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, spec_.retry_backoff_max);
    }
    stats_.journal_left = wrapper_->journal_pending();
  }

  const WorkerSpec& spec_;
  const std::int64_t pid_;
  const idempotency::EffectType type_;
  LedgerWriter ledger_;
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
