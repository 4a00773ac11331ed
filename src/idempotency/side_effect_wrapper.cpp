#include "prodsafe/idempotency/side_effect_wrapper.hpp"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "commit_journal.hpp"
#include "instruments.hpp"
#include "lease_keeper.hpp"
#include "prodsafe/core/backoff.hpp"
#include "prodsafe/core/log.hpp"
#include "result_cache.hpp"

namespace prodsafe::idempotency {
namespace {

using std::chrono::milliseconds;

std::filesystem::path journal_directory(const WrapperOptions& options) {
  if (!options.journal_directory.empty()) return options.journal_directory;
  return default_journal_directory();
}

std::string journal_store(const WrapperOptions& options, const EffectStore& store) {
  if (!options.journal_namespace.empty()) return "namespace " + options.journal_namespace;
  return store.identity();
}

bool is_retryable(const std::exception& error) {
  const auto* ours = dynamic_cast<const Error*>(&error);
  return ours != nullptr && ours->retryable();
}

std::string lease_name(const JournalEntry& entry) { return entry.key + '\n' + entry.holder.id; }

// "effect:<TYPE>:<entity>" -> "<TYPE>" (journal entries keep only the key).
std::string_view type_of_key(std::string_view key) {
  constexpr std::string_view kPrefix = "effect:";
  if (!key.starts_with(kPrefix)) return "unknown";
  key.remove_prefix(kPrefix.size());
  return key.substr(0, key.find(':'));
}

[[noreturn]] void throw_result_unavailable(const std::string& key, const std::string& reason) {
  throw ResultUnavailable(
      key, reason,
      fmt::format("{} ran before, but its result could not be stored ({}); it is not run again. "
                  "Look the effect up downstream; clear the record (EffectStore::clear) only to "
                  "run it once more",
                  key, reason));
}

[[noreturn]] void throw_conflict(const std::string& key, std::string_view stored,
                                 std::string_view ours) {
  throw Conflict(key, fmt::format("{} was already used for another request (stored fingerprint "
                                  "{}, this call's {}); use a new id for a new request",
                                  key, stored, ours));
}

// Longer durations overflow the deadline arithmetic (now + duration) and the
// store's PX argument.
constexpr milliseconds kMaxTtl = std::chrono::hours(24 * 3650);
constexpr milliseconds kMaxDuration = std::chrono::hours(24);

// Throws InvalidArgument naming `name` unless `value` is in (0, max] (or
// [0, max] when `zero_allowed`).
void require_range(milliseconds value, std::string_view name, milliseconds max,
                   bool zero_allowed = false) {
  if (value.count() < 0 || (value.count() == 0 && !zero_allowed) || value > max) {
    throw InvalidArgument(fmt::format("{} must be {} and at most {}, got {} ms", name,
                                      zero_allowed ? "0 or more" : "more than 0",
                                      max == kMaxTtl ? "3,650 days" : "24 h", value.count()));
  }
}

// WAIT counts at most the replicas a primary has; 100 is far above any real
// deployment and keeps the number a plain int.
constexpr int kMaxReplicas = 100;

void require_durability(const Durability& durability, std::string_view name) {
  if (durability.replicas < 0 || durability.replicas > kMaxReplicas) {
    throw InvalidArgument(fmt::format("{}.replicas must be 0 (off) to {}, got {}", name,
                                      kMaxReplicas, durability.replicas));
  }
  // WAIT 0 waits forever: a worker whose replica is down would hang.
  require_range(durability.timeout, fmt::format("{}.timeout", name), kMaxDuration);
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
  Durability durability;
};

struct SideEffectWrapper::Background {
  // Guards the two flags below; the thread waits on `changed`.
  std::mutex mutex;
  std::condition_variable changed;
  bool stopping = false;
  bool kicked = false;
  std::thread thread;
};

struct SideEffectWrapper::JournalLeases {
  // Guards leases.
  std::mutex mutex;
  std::map<std::string, LeaseKeeper::Registration> leases;
};

SideEffectWrapper::SideEffectWrapper(std::shared_ptr<EffectStore> store, WrapperOptions options)
    : store_(std::move(store)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock::instance()),
      instruments_(std::make_unique<Instruments>(
          options_.metrics != nullptr ? *options_.metrics : metrics::default_registry())),
      journal_leases_(std::make_unique<JournalLeases>()),
      background_(std::make_unique<Background>()),
      pid_(::getpid()) {
  if (!store_) throw InvalidArgument("SideEffectWrapper needs an EffectStore, got null");
  require_range(options_.ttl, "WrapperOptions::ttl", kMaxTtl);
  require_range(options_.lease, "WrapperOptions::lease", kMaxDuration);
  require_range(options_.wait_timeout, "WrapperOptions::wait_timeout", kMaxDuration, true);
  require_range(options_.wait_poll_initial, "WrapperOptions::wait_poll_initial", kMaxDuration);
  require_range(options_.wait_poll_max, "WrapperOptions::wait_poll_max", kMaxDuration);
  require_range(options_.commit_retry_delay, "WrapperOptions::commit_retry_delay", kMaxDuration,
                true);
  require_range(options_.journal_flush_interval, "WrapperOptions::journal_flush_interval",
                kMaxDuration);
  require_range(options_.journal_scan_interval, "WrapperOptions::journal_scan_interval",
                kMaxDuration, true);
  if (options_.ttl <= options_.lease) {
    throw InvalidArgument(
        fmt::format("WrapperOptions::ttl ({} ms) must exceed the lease ({} ms): a record must "
                    "outlive its claim",
                    options_.ttl.count(), options_.lease.count()));
  }
  require_durability(options_.durability, "WrapperOptions::durability");
  bool durable = options_.durability.on();
  for (const auto& [name, policy] : options_.per_type) {
    (void)EffectType(name);  // validates the name
    if (policy.ttl) require_range(*policy.ttl, fmt::format("per_type[{}].ttl", name), kMaxTtl);
    if (policy.lease) {
      require_range(*policy.lease, fmt::format("per_type[{}].lease", name), kMaxDuration);
    }
    if (policy.durability) {
      require_durability(*policy.durability, fmt::format("per_type[{}].durability", name));
      durable = durable || policy.durability->on();
    }
  }
  if (durable && !store_->waits_for_replicas()) {
    throw InvalidArgument(fmt::format(
        "WrapperOptions asks for durability (WAIT for replicas), and the effect store '{}' has "
        "no replicas to wait for; use RedisEffectStore, or leave durability off",
        store_->identity()));
  }
  lease_keeper_ = std::make_unique<LeaseKeeper>(*store_);
  journal_ = std::make_unique<CommitJournal>(journal_directory(options_),
                                             journal_store(options_, *store_));
  if (journal_->damaged_lines() > 0) instruments_->journal_damaged(journal_->damaged_lines());
  if (options_.result_cache_size > 0)
    cache_ = std::make_unique<ResultCache>(options_.result_cache_size);
  for (const JournalEntry& entry : journal_->pending()) keep_journaled(entry);
  if (journal_->pending_count() > 0) flush_journal();
  background_->thread = std::thread([this] { background_loop(); });
}

SideEffectWrapper::~SideEffectWrapper() {
  if (::getpid() != pid_) {
    // A fork()ed child's copy: the threads are the parent's (they do not exist
    // here, and a mutex one of them held is held for good), and so are the
    // journal file and the leases. Leave them all alone, at the cost of their
    // memory.
    (void)background_.release();
    (void)lease_keeper_.release();
    (void)journal_leases_.release();
    (void)journal_.release();
    return;
  }
  {
    std::lock_guard lock(background_->mutex);
    background_->stopping = true;
  }
  background_->changed.notify_all();
  if (background_->thread.joinable()) background_->thread.join();
  journal_leases_.reset();  // before the lease keeper they are registered with
}

void SideEffectWrapper::background_loop() {
  using Steady = std::chrono::steady_clock;
  const milliseconds scan_every = options_.journal_scan_interval;
  Steady::time_point next_scan =
      scan_every.count() > 0 ? Steady::now() + scan_every : Steady::time_point::max();
  Background& state = *background_;
  std::unique_lock lock(state.mutex);
  while (!state.stopping) {
    Steady::time_point wake = next_scan;
    if (journal_->pending_count() > 0) {
      wake = std::min(wake, Steady::now() + options_.journal_flush_interval);
    }
    state.changed.wait_until(lock, wake, [&state] { return state.stopping || state.kicked; });
    if (state.stopping) break;
    const bool kicked = std::exchange(state.kicked, false);
    lock.unlock();
    try {
      if (Steady::now() >= next_scan) {
        next_scan = Steady::now() + scan_every;
        const std::size_t damaged_before = journal_->damaged_lines();
        for (const JournalEntry& entry : journal_->adopt_orphans()) keep_journaled(entry);
        if (journal_->damaged_lines() > damaged_before) {
          instruments_->journal_damaged(journal_->damaged_lines() - damaged_before);
        }
      }
      // A kick means a result was just journaled after its commit attempts
      // failed: wait one interval before trying again.
      if (!kicked && journal_->pending_count() > 0) flush_journal();
    } catch (const std::exception& error) {
      logger()->error("the idempotency journal's background thread: {}", error.what());
    }
    lock.lock();
  }
}

void SideEffectWrapper::keep_journaled(const JournalEntry& entry) {
  if (!options_.renew_leases || entry.lease.count() <= 0) return;
  auto registration =
      lease_keeper_->keep(entry.key, entry.holder, entry.lease, entry.ttl, entry.fingerprint);
  {
    std::lock_guard lock(journal_leases_->mutex);
    journal_leases_->leases.erase(lease_name(entry));
    journal_leases_->leases.emplace(lease_name(entry), std::move(registration));
  }
  // A flush may have settled the entry before this renewal existed (a flush
  // marks an entry done, then forgets its renewal): then nothing else would
  // forget it, and it would renew, and once the record ends write anew, a
  // record whose effect is over.
  if (!journal_->holds(entry)) forget_journaled(entry);
}

void SideEffectWrapper::forget_journaled(const JournalEntry& entry) {
  std::lock_guard lock(journal_leases_->mutex);
  journal_leases_->leases.erase(lease_name(entry));
}

void SideEffectWrapper::require_own_process() const {
  if (::getpid() == pid_) return;
  throw InvalidArgument(fmt::format(
      "this SideEffectWrapper was made in process {}, before a fork(); its lease and journal "
      "threads did not follow into this process ({}), so it cannot protect effects here. Make "
      "a new wrapper in this process",
      pid_, ::getpid()));
}

SideEffectWrapper::Resolved SideEffectWrapper::resolve(const EffectType& type,
                                                       const CallOptions& call) const {
  Resolved resolved{
      options_.ttl,         options_.lease,        options_.record_failures, false,
      options_.in_progress, options_.wait_timeout, call.fingerprint,         options_.durability};
  if (const auto found = options_.per_type.find(type.name()); found != options_.per_type.end()) {
    const EffectPolicy& policy = found->second;
    if (policy.ttl) resolved.ttl = *policy.ttl;
    if (policy.lease) resolved.lease = *policy.lease;
    if (policy.record_failures) resolved.record_failures = *policy.record_failures;
    resolved.fail_open = policy.fail_open;
    if (policy.durability) resolved.durability = *policy.durability;
  }
  if (call.ttl) resolved.ttl = *call.ttl;
  if (call.lease) resolved.lease = *call.lease;
  if (call.in_progress) resolved.in_progress = *call.in_progress;
  if (call.wait_timeout) resolved.wait_timeout = *call.wait_timeout;
  require_range(resolved.ttl, fmt::format("effect {}: ttl", type.name()), kMaxTtl);
  require_range(resolved.lease, fmt::format("effect {}: lease", type.name()), kMaxDuration);
  require_range(resolved.wait_timeout, fmt::format("effect {}: wait_timeout", type.name()),
                kMaxDuration, true);
  if (resolved.ttl <= resolved.lease) {
    throw InvalidArgument(fmt::format(
        "effect {}: ttl ({} ms) and lease ({} ms) must be positive and ttl must exceed the lease",
        type.name(), resolved.ttl.count(), resolved.lease.count()));
  }
  return resolved;
}

tracing::Span SideEffectWrapper::step_span(std::string_view name,
                                           const tracing::TraceContext* trace) const {
  if (trace == nullptr || !options_.tracer) return {};
  return options_.tracer->start_span(name, trace);
}

namespace {

std::string_view outcome_name(bool executed, bool recovered, bool commit_pending, bool unprotected,
                              bool from_cache, bool lease_lost, bool result_unavailable) {
  if (lease_lost) return "lease_lost";
  if (unprotected) return "unprotected";
  if (executed && result_unavailable) return "result_unavailable";
  if (executed && commit_pending) return "commit_pending";
  if (recovered) return "recovered";
  if (executed) return "executed";
  if (from_cache) return "cached";
  if (commit_pending) return "journaled";
  return "duplicate";
}

std::string_view claim_status_name(ClaimStatus status) {
  switch (status) {
    case ClaimStatus::kClaimed:
      return "claimed";
    case ClaimStatus::kRecovered:
      return "recovered";
    case ClaimStatus::kCompleted:
      return "completed";
    case ClaimStatus::kInProgress:
      return "in_progress";
    case ClaimStatus::kConflict:
      return "conflict";
    case ClaimStatus::kFailed:
      return "failed";
    case ClaimStatus::kUnavailable:
      return "unavailable";
  }
  return "unknown";
}

// The traceparent to hand the effect: its span's, or (an unsampled trace,
// whose spans record nothing) the call's, so the trace still flows on.
std::string traceparent_of(const tracing::Span& span, const tracing::TraceContext& call) {
  return tracing::format_traceparent(span.context().valid() ? span.context() : call);
}

}  // namespace

SideEffectWrapper::Raw SideEffectWrapper::execute_raw(const EffectType& type,
                                                      std::string_view entity_id,
                                                      const Runner& runner,
                                                      const CallOptions& call) {
  if (!options_.tracer) return execute_steps(type, entity_id, runner, call, nullptr);
  tracing::Span span = options_.tracer->start_span(
      "prodsafe.execute_once", call.trace_parent ? &*call.trace_parent : nullptr);
  span.set_attribute("prodsafe.effect.type", type.name());
  const tracing::TraceContext context = span.context();
  // An unsampled parent: no spans below it either, but the effect still gets
  // the traceparent (context is valid, recording is off).
  const tracing::TraceContext* trace = context.valid() ? &context : nullptr;
  try {
    Raw raw = execute_steps(type, entity_id, runner, call, trace);
    span.set_attribute("prodsafe.effect.key", raw.key)
        .set_attribute("prodsafe.fencing_token", raw.token)
        .set_attribute("prodsafe.recovering", raw.recovered)
        .set_attribute(
            "prodsafe.outcome",
            outcome_name(raw.executed, raw.recovered, raw.commit_pending, raw.unprotected,
                         raw.from_cache, raw.lease_lost, raw.result_unavailable));
    if (raw.lease_lost) span.set_error("the lease was taken over before the commit");
    return raw;
  } catch (const Error& error) {
    span.set_attribute("prodsafe.effect.key", effect_key(type, entity_id))
        .set_attribute("prodsafe.outcome", to_string(error.code()))
        .set_error(error.what());
    throw;
  } catch (const std::exception& error) {
    span.set_attribute("prodsafe.effect.key", effect_key(type, entity_id))
        .set_attribute("prodsafe.outcome", "effect_error")
        .set_error(error.what());
    throw;
  }
}

SideEffectWrapper::Raw SideEffectWrapper::execute_steps(const EffectType& type,
                                                        std::string_view entity_id,
                                                        const Runner& runner,
                                                        const CallOptions& call,
                                                        const tracing::TraceContext* trace) {
  require_own_process();
  std::string key = effect_key(type, entity_id);
  const Resolved policy = resolve(type, call);
  // A result of this key waiting in the journal is committed first, so that
  // the store (not the journal) answers once it can; other keys' entries are
  // the background thread's, so a call never pays for them.
  if (journal_->pending_count() > 0 && journal_->find(key)) flush(key);

  if (cache_) {
    if (auto hit = cache_->get(key, clock_.steady_now())) {
      // The cached fingerprint is the stored one: a call for another request
      // goes on to the store and gets Conflict.
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

  // This process ran the effect and its result still waits for the store.
  // Claiming now would meet this process's own lease and, once it ended, run
  // the effect again: answer with the journaled result instead.
  const auto from_journal = [&]() -> std::optional<Raw> {
    if (journal_->pending_count() == 0) return std::nullopt;
    auto journaled = journal_->find(key);
    if (!journaled) return std::nullopt;
    if (!policy.fingerprint.empty() && !journaled->fingerprint.empty() &&
        journaled->fingerprint != policy.fingerprint) {
      instruments_->count(type.name(), Event::kConflict);
      throw_conflict(key, journaled->fingerprint, policy.fingerprint);
    }
    if (journaled->state == FinalState::kUnavailable) {
      instruments_->count(type.name(), Event::kResultUnavailable);
      throw_result_unavailable(key, journaled->result);
    }
    instruments_->count(type.name(), Event::kDuplicate);
    return Raw{.commit_pending = true,
               .key = key,
               .token = journaled->holder.token,
               .result = std::move(journaled->result)};
  };
  if (auto journaled = from_journal()) return std::move(*journaled);

  Claim claim;
  const Clock::SteadyTime claimed_at = clock_.steady_now();
  try {
    tracing::Span claim_span = step_span("prodsafe.claim", trace);
    try {
      claim = claim_or_wait(key, policy);
      claim_span.set_attribute("prodsafe.claim.status", claim_status_name(claim.status));
    } catch (const std::exception& error) {
      claim_span.set_error(error.what());
      throw;
    }
  } catch (const StoreUnavailable& error) {
    instruments_->store_error(type.name());
    if (!policy.fail_open) throw;  // fail closed: the effect is not run
    logger()->warn(
        "{}: the store is unreachable ({}); running the effect UNPROTECTED because "
        "its type is configured to fail open",
        key, error.what());
    return run_unprotected(type.name(), std::move(key), runner, trace);
  }

  switch (claim.status) {
    case ClaimStatus::kCompleted:
      instruments_->count(type.name(), Event::kDuplicate);
      if (cache_) {
        cache_->put(
            key, {claim.fingerprint, claim.payload, claim.token, claimed_at + claim.ttl_remaining});
      }
      return Raw{.key = std::move(key), .token = claim.token, .result = std::move(claim.payload)};
    case ClaimStatus::kUnavailable:
      instruments_->count(type.name(), Event::kResultUnavailable);
      throw_result_unavailable(key, claim.payload);
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
      // It may be this process's own run, journaled while this call waited.
      if (auto journaled = from_journal()) return std::move(*journaled);
      instruments_->count(type.name(), Event::kInProgress);
      throw AlreadyInProgress(
          key, claim.retry_after,
          fmt::format("{} is being run by another worker (token {}); retry after {} ms", key,
                      claim.token, claim.retry_after.count()));
    case ClaimStatus::kClaimed:
    case ClaimStatus::kRecovered:
      break;
  }
  return run_and_commit(type.name(), std::move(key), claim, claimed_at, runner, policy, trace);
}

Claim SideEffectWrapper::claim_or_wait(const std::string& key, const Resolved& policy) {
  Claim claim =
      store_->claim_durably(key, policy.fingerprint, policy.lease, policy.ttl, policy.durability);
  if (claim.status != ClaimStatus::kInProgress || policy.in_progress != InProgressPolicy::kWait) {
    return claim;
  }
  const auto deadline = clock_.steady_now() + policy.wait_timeout;
  // No jitter: the waits are the documented doubling, and the lease's
  // retry_after already cuts them short.
  Backoff polls(Jitter::kNone, options_.wait_poll_initial,
                std::max(options_.wait_poll_initial, options_.wait_poll_max), 1);
  for (int poll = 0; claim.status == ClaimStatus::kInProgress; ++poll) {
    const auto now = clock_.steady_now();
    if (now >= deadline) break;
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - now);
    milliseconds delay = polls.next(poll);
    // A max below the initial wait caps the waits after the first.
    if (poll > 0) delay = std::min(delay, options_.wait_poll_max);
    // Never sleep past the lease's end: then this caller may recover it.
    clock_.sleep_for(std::max(milliseconds(1), std::min({delay, claim.retry_after, left})));
    // This process's own run of the effect journaled its result: its lease
    // is not this caller's to recover (execute_raw answers from the journal).
    if (journal_->pending_count() > 0 && journal_->find(key)) break;
    claim =
        store_->claim_durably(key, policy.fingerprint, policy.lease, policy.ttl, policy.durability);
  }
  return claim;
}

SideEffectWrapper::Raw SideEffectWrapper::run_unprotected(std::string_view type, std::string key,
                                                          const Runner& runner,
                                                          const tracing::TraceContext* trace) {
  instruments_->count(type, Event::kFailOpen);
  tracing::Span effect_span = step_span("prodsafe.effect", trace);
  EffectContext context{key, 0, false};
  if (trace != nullptr) context.traceparent = traceparent_of(effect_span, *trace);
  Raw raw{.executed = true, .unprotected = true, .key = std::move(key)};
  detail::Encoded encoded;
  try {
    encoded = runner(context);
  } catch (const std::exception& error) {
    effect_span.set_error(error.what());
    throw;
  }
  raw.result_unavailable = !encoded.ok;
  if (encoded.ok) raw.result = encoded.bytes;
  instruments_->count(type, Event::kExecuted);
  return raw;
}

void SideEffectWrapper::abandon(std::string_view type, const std::string& key, const Holder& holder,
                                const Resolved& policy, const std::string& error, bool retryable) {
  instruments_->count(type, Event::kEffectError);
  // A retryable error (a timeout, an unreachable dependency) says "try again":
  // recording it as a failure would refuse every later try.
  const bool record = policy.record_failures && !retryable;
  try {
    if (record) {
      store_->record_failure(key, holder, error, policy.fingerprint, policy.ttl);
    } else {
      store_->release(key, holder);
    }
  } catch (const std::exception& failure) {
    // The lease will expire and a later caller recovers the effect.
    logger()->warn(
        "{}: the effect threw and its claim could not be {}: {}; it will be "
        "recoverable when its lease ends",
        key, record ? "marked failed" : "released", failure.what());
  }
}

SideEffectWrapper::Raw SideEffectWrapper::run_and_commit(
    std::string_view type, std::string key, const Claim& claim, Clock::SteadyTime claimed_at,
    const Runner& runner, const Resolved& policy, const tracing::TraceContext* trace) {
  const bool recovering = claim.status == ClaimStatus::kRecovered;
  if (recovering) instruments_->count(type, Event::kRecovered);
  const Holder holder = claim.holder();
  tracing::Span effect_span = step_span("prodsafe.effect", trace);
  EffectContext context{key, claim.token, recovering};
  if (trace != nullptr) context.traceparent = traceparent_of(effect_span, *trace);
  Raw raw{.executed = true, .recovered = recovering, .key = std::move(key), .token = claim.token};
  // What the record carries: the caller's fingerprint, else the one it had.
  const std::string fingerprint =
      policy.fingerprint.empty() ? claim.fingerprint : std::string(policy.fingerprint);
  // Ending the claim writes that fingerprint too when the record vanished.
  Resolved stored = policy;
  stored.fingerprint = fingerprint;
  detail::Encoded encoded;
  {
    std::optional<LeaseKeeper::Registration> renewal;
    if (options_.renew_leases) {
      renewal.emplace(lease_keeper_->keep(raw.key, holder, policy.lease, policy.ttl, fingerprint));
    }
    try {
      encoded = runner(context);
    } catch (const std::exception& error) {
      renewal.reset();
      effect_span.set_error(error.what());
      effect_span.end();
      abandon(type, raw.key, holder, stored, error.what(), is_retryable(error));
      throw;
    } catch (...) {
      renewal.reset();
      effect_span.set_error("a non-standard exception");
      effect_span.end();
      abandon(type, raw.key, holder, stored, "a non-standard exception", false);
      throw;
    }
  }
  effect_span.end();

  // From here on the effect has run: no failure may release the claim or
  // drop the result.
  FinalState state = FinalState::kCompleted;
  if (!encoded.ok) {
    state = FinalState::kUnavailable;
    raw.result_unavailable = true;
    instruments_->count(type, Event::kEncodeError);
    logger()->error(
        "{}: the effect ran but its result cannot be encoded ({}); it is recorded as done "
        "without a result, and later calls get ResultUnavailable instead of running it again",
        raw.key, encoded.bytes);
  }
  raw.result = std::move(encoded.bytes);

  FinishStatus status = FinishStatus::kDone;
  tracing::Span commit_span = step_span("prodsafe.commit", trace);
  const bool committed =
      finish_with_retries(type, raw.key, holder, state, raw.result, stored, status);
  if (!committed) commit_span.set_error("the commit failed; the result is journaled");
  if (committed && status == FinishStatus::kLeaseLost) commit_span.set_error("lease lost");
  commit_span.end();
  if (committed) {
    if (status == FinishStatus::kLeaseLost) {
      instruments_->count(type, Event::kLeaseLost);
      raw.lease_lost = true;
      return raw;
    }
    instruments_->count(type, Event::kExecuted);
    if (cache_ && state == FinalState::kCompleted) {
      cache_->put(raw.key, {fingerprint, raw.result, claim.token, claimed_at + policy.ttl});
    }
    return raw;
  }

  // The effect ran but its outcome could not be stored: keep it locally.
  journal(type,
          JournalEntry{raw.key, holder, policy.ttl, policy.lease, state, fingerprint, raw.result});
  instruments_->count(type, Event::kExecuted);
  instruments_->count(type, Event::kCommitPending);
  raw.commit_pending = true;
  return raw;
}

void SideEffectWrapper::journal(std::string_view type, const JournalEntry& entry) {
  try {
    journal_->append(entry);
    logger()->warn(
        "{}: the effect ran but its commit failed; the result is journaled in {} and will be "
        "committed as soon as the store accepts it",
        entry.key, journal_->directory().string());
  } catch (const std::exception& error) {
    logger()->critical(
        "{} ({}): the effect ran, its commit failed, AND the journal cannot be written ({}); "
        "the result is held in memory and committed by this process when the store accepts "
        "it, but lost if this process dies first",
        entry.key, type, error.what());
  }
  keep_journaled(entry);
  {
    std::lock_guard lock(background_->mutex);
    background_->kicked = true;
  }
  background_->changed.notify_all();
}

bool SideEffectWrapper::finish_with_retries(std::string_view type, const std::string& key,
                                            const Holder& holder, FinalState state,
                                            const std::string& payload, const Resolved& policy,
                                            FinishStatus& status) {
  const int attempts = std::max(1, options_.commit_attempts);
  // Made at the first failure: most commits succeed at once.
  std::optional<Backoff> waits;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    // Unreachable, refused (OOM, NOREPLICAS, MISCONF, READONLY, LOADING), a
    // damaged record, anything (a user's store may throw what it likes): the
    // effect ran, so its result must reach the store or the journal, never
    // be dropped.
    std::string failure;
    try {
      status = store_->finish_durably(key, holder, state, payload, policy.fingerprint, policy.ttl,
                                      policy.durability);
      return true;
    } catch (const std::exception& error) {
      failure = error.what();
    } catch (...) {
      failure = "a non-standard exception";
    }
    instruments_->store_error(type);
    logger()->warn("{}: commit attempt {}/{} failed: {}", key, attempt, attempts, failure);
    if (attempt < attempts) {
      milliseconds delay(0);
      if (options_.commit_retry_delay.count() > 0) {
        if (!waits) waits.emplace(Jitter::kNone, options_.commit_retry_delay, kMaxBackoffDelay, 1);
        delay = waits->next(attempt - 1);
      }
      clock_.sleep_for(delay);
    }
  }
  return false;
}

std::size_t SideEffectWrapper::flush_journal() {
  require_own_process();
  return flush(std::nullopt);
}

std::size_t SideEffectWrapper::flush(std::optional<std::string_view> only_key) {
  std::unique_lock lock(flush_mutex_, std::try_to_lock);
  if (!lock) return journal_->pending_count();
  for (const JournalEntry& entry : journal_->pending()) {
    if (only_key && entry.key != *only_key) continue;
    FinishStatus status = FinishStatus::kDone;
    try {
      status = store_->finish_durably(entry.key, entry.holder, entry.state, entry.result,
                                      entry.fingerprint, entry.ttl, options_.durability);
    } catch (const std::exception& error) {
      // Logged once per key and message: this repeats every flush interval.
      auto [logged, fresh] = flush_errors_.try_emplace(entry.key, error.what());
      if (fresh || logged->second != error.what()) {
        logged->second = error.what();
        logger()->error("{}: the journaled result cannot be committed yet ({}); it stays in {}",
                        entry.key, error.what(), journal_->directory().string());
      }
      // Retryable (unreachable, LOADING, OOM...): the whole store is, so try
      // again next interval. Otherwise only this entry is refused (a damaged
      // record): try the others.
      if (is_retryable(error)) break;
      continue;
    }
    flush_errors_.erase(entry.key);
    if (status == FinishStatus::kLeaseLost) {
      instruments_->count(type_of_key(entry.key), Event::kLeaseLost);
      logger()->error(
          "{}: another worker recovered the effect (token after {}) before its "
          "journaled result could be committed; the effect may have run twice. "
          "Reconcile with the downstream system",
          entry.key, entry.holder.token);
    } else {
      instruments_->journal_committed();
      logger()->info("{}: journaled result (token {}) committed", entry.key, entry.holder.token);
    }
    try {
      journal_->mark_done(entry);
    } catch (const std::exception& error) {
      logger()->error("{}: cannot update the journal: {}", entry.key, error.what());
    }
    forget_journaled(entry);  // after mark_done: see keep_journaled
  }
  return journal_->pending_count();
}

std::size_t SideEffectWrapper::journal_pending() const { return journal_->pending_count(); }

WrapperStats SideEffectWrapper::stats() const { return instruments_->stats(); }

}  // namespace prodsafe::idempotency
