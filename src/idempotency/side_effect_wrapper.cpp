#include "prodsafe/idempotency/side_effect_wrapper.hpp"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "commit_journal.hpp"
#include "instruments.hpp"
#include "lease_keeper.hpp"
#include "prodsafe/core/log.hpp"
#include "result_cache.hpp"

namespace prodsafe::idempotency {
namespace {

using std::chrono::milliseconds;

std::filesystem::path journal_directory(const WrapperOptions& options) {
  if (!options.journal_directory.empty()) return options.journal_directory;
  const char* env = std::getenv("PRODSAFE_JOURNAL_DIR");
  if (env != nullptr && *env != '\0') return env;
  return "/var/tmp/prodsafe-journal";
}

// "effect:<TYPE>:<entity>" -> "<TYPE>" (journal entries keep only the key).
std::string_view type_of_key(std::string_view key) {
  constexpr std::string_view kPrefix = "effect:";
  if (!key.starts_with(kPrefix)) return "unknown";
  key.remove_prefix(kPrefix.size());
  return key.substr(0, key.find(':'));
}

[[noreturn]] void throw_conflict(const std::string& key, std::string_view stored,
                                 std::string_view ours) {
  throw Conflict(key, fmt::format("{} was already used for another request (stored fingerprint "
                                  "{}, this call's {}); use a new id for a new request",
                                  key, stored, ours));
}

void require_positive(milliseconds value, const char* name) {
  if (value.count() <= 0) {
    throw InvalidArgument(
        fmt::format("WrapperOptions::{} must be positive, got {} ms", name, value.count()));
  }
}

}  // namespace

namespace detail {

void throw_lease_lost(const std::string& key, std::uint64_t token, std::any result) {
  throw LeaseLost(key, token, std::move(result),
                  fmt::format("the effect {} ran, but its lease (token {}) was taken over by "
                              "another worker before it could commit; the other worker's result "
                              "stands. This run's result is attached (LeaseLost::result<T>()): "
                              "reconcile it with the downstream system",
                              key, token));
}

void rethrow_decode_error(const std::string& key, const DecodeError& error) {
  throw DecodeError(
      fmt::format("the stored result of {} cannot be decoded: {}", key, error.what()));
}

}  // namespace detail

struct SideEffectWrapper::Resolved {
  milliseconds ttl;
  milliseconds lease;
  bool record_failures;
  bool fail_open;
  InProgressPolicy in_progress;
  milliseconds wait_timeout;
  std::string_view fingerprint;
};

SideEffectWrapper::SideEffectWrapper(std::shared_ptr<EffectStore> store, WrapperOptions options)
    : store_(std::move(store)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock::instance()),
      instruments_(std::make_unique<Instruments>(
          options_.metrics != nullptr ? *options_.metrics : metrics::default_registry())) {
  if (!store_) throw InvalidArgument("SideEffectWrapper needs an EffectStore, got null");
  require_positive(options_.ttl, "ttl");
  require_positive(options_.lease, "lease");
  require_positive(options_.wait_poll_initial, "wait_poll_initial");
  if (options_.ttl <= options_.lease) {
    throw InvalidArgument(
        fmt::format("WrapperOptions::ttl ({} ms) must exceed the lease ({} ms): a record must "
                    "outlive its claim",
                    options_.ttl.count(), options_.lease.count()));
  }
  for (const auto& [name, policy] : options_.per_type) {
    (void)EffectType(name);  // validates the name
    if (policy.ttl && policy.ttl->count() <= 0) {
      throw InvalidArgument(fmt::format("per_type[{}].ttl must be positive", name));
    }
    if (policy.lease && policy.lease->count() <= 0) {
      throw InvalidArgument(fmt::format("per_type[{}].lease must be positive", name));
    }
  }
  journal_ = std::make_unique<CommitJournal>(journal_directory(options_));
  lease_keeper_ = std::make_unique<LeaseKeeper>(*store_);
  if (options_.result_cache_size > 0)
    cache_ = std::make_unique<ResultCache>(options_.result_cache_size);
  if (journal_->pending_count() > 0) flush_journal();
}

SideEffectWrapper::~SideEffectWrapper() = default;

SideEffectWrapper::Resolved SideEffectWrapper::resolve(const EffectType& type,
                                                       const CallOptions& call) const {
  Resolved resolved{options_.ttl,         options_.lease,        options_.record_failures, false,
                    options_.in_progress, options_.wait_timeout, call.fingerprint};
  if (const auto found = options_.per_type.find(type.name()); found != options_.per_type.end()) {
    const EffectPolicy& policy = found->second;
    if (policy.ttl) resolved.ttl = *policy.ttl;
    if (policy.lease) resolved.lease = *policy.lease;
    if (policy.record_failures) resolved.record_failures = *policy.record_failures;
    resolved.fail_open = policy.fail_open;
  }
  if (call.ttl) resolved.ttl = *call.ttl;
  if (call.lease) resolved.lease = *call.lease;
  if (call.in_progress) resolved.in_progress = *call.in_progress;
  if (call.wait_timeout) resolved.wait_timeout = *call.wait_timeout;
  if (resolved.ttl.count() <= 0 || resolved.lease.count() <= 0 || resolved.ttl <= resolved.lease) {
    throw InvalidArgument(fmt::format(
        "effect {}: ttl ({} ms) and lease ({} ms) must be positive and ttl must exceed the lease",
        type.name(), resolved.ttl.count(), resolved.lease.count()));
  }
  return resolved;
}

SideEffectWrapper::Raw SideEffectWrapper::execute_raw(const EffectType& type,
                                                      std::string_view entity_id,
                                                      const Runner& runner,
                                                      const CallOptions& call) {
  std::string key = effect_key(type, entity_id);
  const Resolved policy = resolve(type, call);
  if (journal_->pending_count() > 0) flush_journal();

  if (cache_) {
    if (auto hit = cache_->get(key, clock_.steady_now())) {
      const bool comparable = !policy.fingerprint.empty() && !hit->fingerprint.empty();
      if (!comparable || hit->fingerprint == policy.fingerprint) {
        instruments_->count(type.name(), Event::kDuplicate);
        instruments_->cache_hit();
        return Raw{.from_cache = true,
                   .key = std::move(key),
                   .token = hit->token,
                   .result = std::move(hit->result)};
      }
    }
  }

  if (journal_->pending_count() > 0) {
    if (auto journaled = journal_->find(key)) {
      // This process ran the effect and its result still waits for the store.
      // Claiming now would meet this process's own lease and, once it ended,
      // run the effect again: answer with the journaled result instead.
      if (!policy.fingerprint.empty() && !journaled->fingerprint.empty() &&
          journaled->fingerprint != policy.fingerprint) {
        instruments_->count(type.name(), Event::kConflict);
        throw_conflict(key, journaled->fingerprint, policy.fingerprint);
      }
      instruments_->count(type.name(), Event::kDuplicate);
      return Raw{.commit_pending = true,
                 .key = std::move(key),
                 .token = journaled->token,
                 .result = std::move(journaled->result)};
    }
  }

  Claim claim;
  try {
    claim = claim_or_wait(key, policy);
  } catch (const StoreUnavailable& error) {
    instruments_->store_error(type.name());
    if (!policy.fail_open) throw;  // fail closed: the effect is not run
    logger()->warn(
        "{}: the store is unreachable ({}); running the effect UNPROTECTED because "
        "its type is configured to fail open",
        key, error.what());
    return run_unprotected(type.name(), std::move(key), runner);
  }

  switch (claim.status) {
    case ClaimStatus::kCompleted:
      instruments_->count(type.name(), Event::kDuplicate);
      if (cache_) {
        cache_->put(key, {std::string(policy.fingerprint), claim.payload, claim.token,
                          clock_.steady_now() + policy.ttl});
      }
      return Raw{.key = std::move(key), .token = claim.token, .result = std::move(claim.payload)};
    case ClaimStatus::kConflict:
      instruments_->count(type.name(), Event::kConflict);
      throw_conflict(key, claim.payload, policy.fingerprint);
    case ClaimStatus::kFailed:
      instruments_->count(type.name(), Event::kFailureReplayed);
      throw EffectFailed(key, claim.payload,
                         fmt::format("{} failed earlier and its failure was recorded: {}; clear "
                                     "the record (EffectStore::clear) to run it again",
                                     key, claim.payload));
    case ClaimStatus::kInProgress:
      instruments_->count(type.name(), Event::kInProgress);
      throw AlreadyInProgress(
          key, claim.retry_after,
          fmt::format("{} is being run by another worker (token {}); retry after {} ms", key,
                      claim.token, claim.retry_after.count()));
    case ClaimStatus::kClaimed:
    case ClaimStatus::kRecovered:
      break;
  }
  return run_and_commit(type.name(), std::move(key), claim, runner, policy);
}

Claim SideEffectWrapper::claim_or_wait(const std::string& key, const Resolved& policy) {
  Claim claim = store_->claim(key, policy.fingerprint, policy.lease, policy.ttl);
  if (claim.status != ClaimStatus::kInProgress || policy.in_progress != InProgressPolicy::kWait) {
    return claim;
  }
  const auto deadline = clock_.steady_now() + policy.wait_timeout;
  milliseconds delay = options_.wait_poll_initial;
  while (claim.status == ClaimStatus::kInProgress) {
    const auto now = clock_.steady_now();
    if (now >= deadline) break;
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - now);
    // Never sleep past the lease's end: then this caller may recover it.
    clock_.sleep_for(std::max(milliseconds(1), std::min({delay, claim.retry_after, left})));
    delay = std::min(delay * 2, options_.wait_poll_max);
    claim = store_->claim(key, policy.fingerprint, policy.lease, policy.ttl);
  }
  return claim;
}

SideEffectWrapper::Raw SideEffectWrapper::run_unprotected(std::string_view type, std::string key,
                                                          const Runner& runner) {
  instruments_->count(type, Event::kFailOpen);
  const EffectContext context{key, 0, false};
  Raw raw{.executed = true, .unprotected = true, .key = std::move(key)};
  raw.result = runner(context);
  instruments_->count(type, Event::kExecuted);
  return raw;
}

void SideEffectWrapper::abandon(std::string_view type, const std::string& key, std::uint64_t token,
                                const Resolved& policy, const std::string& error) {
  instruments_->count(type, Event::kEffectError);
  try {
    if (policy.record_failures) {
      store_->record_failure(key, token, error, policy.fingerprint, policy.ttl);
    } else {
      store_->release(key, token);
    }
  } catch (const Error& failure) {
    // The lease will expire and a later caller recovers the effect.
    logger()->warn(
        "{}: the effect threw and its claim could not be {}: {}; it will be "
        "recoverable when its lease ends",
        key, policy.record_failures ? "marked failed" : "released", failure.what());
  }
}

SideEffectWrapper::Raw SideEffectWrapper::run_and_commit(std::string_view type, std::string key,
                                                         const Claim& claim, const Runner& runner,
                                                         const Resolved& policy) {
  const bool recovering = claim.status == ClaimStatus::kRecovered;
  if (recovering) instruments_->count(type, Event::kRecovered);
  const EffectContext context{key, claim.token, recovering};
  Raw raw{.executed = true, .recovered = recovering, .key = std::move(key), .token = claim.token};
  {
    std::optional<LeaseKeeper::Registration> renewal;
    if (options_.renew_leases)
      renewal.emplace(lease_keeper_->keep(raw.key, claim.token, policy.lease));
    try {
      raw.result = runner(context);
    } catch (const std::exception& error) {
      renewal.reset();
      abandon(type, raw.key, claim.token, policy, error.what());
      throw;
    } catch (...) {
      renewal.reset();
      abandon(type, raw.key, claim.token, policy, "a non-standard exception");
      throw;
    }
  }

  FinishStatus status = FinishStatus::kDone;
  if (commit_with_retries(raw.key, claim.token, raw.result, policy, status)) {
    if (status == FinishStatus::kLeaseLost) {
      instruments_->count(type, Event::kLeaseLost);
      raw.lease_lost = true;
      return raw;
    }
    instruments_->count(type, Event::kExecuted);
    if (cache_) {
      cache_->put(raw.key, {std::string(policy.fingerprint), raw.result, claim.token,
                            clock_.steady_now() + policy.ttl});
    }
    return raw;
  }

  // The effect ran but the store cannot be reached: keep the result locally.
  const JournalEntry entry{raw.key, claim.token, policy.ttl, std::string(policy.fingerprint),
                           raw.result};
  try {
    journal_->append(entry);
    logger()->warn(
        "{}: the effect ran but its commit could not reach the store; the result is "
        "journaled in {} and will be committed when the store answers",
        raw.key, journal_->directory().string());
  } catch (const Error& error) {
    logger()->critical(
        "{}: the effect ran, its commit could not reach the store, AND the journal "
        "cannot be written ({}); only the caller holds the result now",
        raw.key, error.what());
  }
  instruments_->count(type, Event::kExecuted);
  instruments_->count(type, Event::kCommitPending);
  raw.commit_pending = true;
  return raw;
}

bool SideEffectWrapper::commit_with_retries(const std::string& key, std::uint64_t token,
                                            const std::string& result, const Resolved& policy,
                                            FinishStatus& status) {
  const int attempts = std::max(1, options_.commit_attempts);
  milliseconds delay = options_.commit_retry_delay;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    try {
      status = store_->commit(key, token, result, policy.fingerprint, policy.ttl);
      return true;
    } catch (const Error& error) {
      // Unreachable, or a transient refusal (LOADING after a restart, BUSY,
      // READONLY during a failover): the effect ran, so its result must
      // reach the store or the journal, never be dropped.
      const bool transient = error.code() == ErrorCode::kStoreUnavailable ||
                             error.code() == ErrorCode::kTimeout ||
                             (error.code() == ErrorCode::kReplyError && error.retryable());
      if (!transient) throw;
      logger()->warn("{}: commit attempt {}/{} failed: {}", key, attempt, attempts, error.what());
      if (attempt < attempts) {
        clock_.sleep_for(delay);
        delay *= 2;
      }
    }
  }
  return false;
}

std::size_t SideEffectWrapper::flush_journal() {
  std::unique_lock lock(flush_mutex_, std::try_to_lock);
  if (!lock) return journal_->pending_count();
  for (const JournalEntry& entry : journal_->pending()) {
    FinishStatus status = FinishStatus::kDone;
    try {
      status = store_->commit(entry.key, entry.token, entry.result, entry.fingerprint, entry.ttl);
    } catch (const StoreUnavailable&) {
      break;  // still down; try again later
    } catch (const ReplyError& error) {
      if (error.retryable()) break;  // e.g. LOADING: the store is coming back; try again later
      logger()->error("{}: the journaled result cannot be committed ({}); it stays in {}",
                      entry.key, error.what(), journal_->file().string());
      continue;
    } catch (const Error& error) {
      logger()->error("{}: the journaled result cannot be committed ({}); it stays in {}",
                      entry.key, error.what(), journal_->file().string());
      continue;
    }
    if (status == FinishStatus::kLeaseLost) {
      instruments_->count(type_of_key(entry.key), Event::kLeaseLost);
      logger()->error(
          "{}: another worker recovered the effect (token after {}) before its "
          "journaled result could be committed; the effect may have run twice. "
          "Reconcile with the downstream system",
          entry.key, entry.token);
    } else {
      instruments_->journal_committed();
      logger()->info("{}: journaled result (token {}) committed", entry.key, entry.token);
    }
    try {
      journal_->mark_done(entry);
    } catch (const Error& error) {
      logger()->error("{}: cannot update the journal: {}", entry.key, error.what());
    }
  }
  return journal_->pending_count();
}

std::size_t SideEffectWrapper::journal_pending() const { return journal_->pending_count(); }

WrapperStats SideEffectWrapper::stats() const { return instruments_->stats(); }

}  // namespace prodsafe::idempotency
