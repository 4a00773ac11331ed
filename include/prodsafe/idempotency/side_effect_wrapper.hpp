// Exactly-once side effects: the seed's SideEffectWrapper, built to the
// protocol in docs/architecture.md § Idempotency (claim, run, commit, with
// leases, fencing tokens and cached results).
//
//   auto client = std::make_shared<prodsafe::redis::Client>("redis://127.0.0.1:6379");
//   SideEffectWrapper wrapper(std::make_shared<RedisEffectStore>(client));
//   auto [executed, fill] = wrapper.execute_once(
//       EffectType::ORDER_PLACEMENT, "order-42",
//       [&](const EffectContext& ctx) { return exchange.place(order, ctx.key); });
//
// Errors: Conflict (same key, other fingerprint), AlreadyInProgress (another
// worker holds a live lease), LeaseLost (this run was superseded; carries the
// result), EffectFailed (a recorded failure), ResultUnavailable (an earlier
// run's result could not be encoded; the effect is not run again),
// StoreUnavailable (the store is down at claim time: the effect was NOT run,
// unless the type fails open), DecodeError (a corrupted record), and whatever
// the effect itself throws (rethrown after the claim is released or the
// failure recorded). Once the effect has run, no failure of its commit is
// thrown: the result goes to the journal and the call returns it with
// commit_pending (a journal that cannot be written, an IoError, is logged
// and the result held in memory until this process commits it).
//
// A wrapper runs two background threads: one renews leases, one commits
// journaled results as soon as the store answers and adopts the journals of
// dead processes of the same store (WrapperOptions::journal_*). Threads do
// not survive fork(): make wrappers in the process that uses them (after
// forking workers). A fork()ed child's calls on its parent's wrapper throw
// InvalidArgument, and destroying it there leaves the parent's journal and
// threads alone.
//
// Thread safety: safe for concurrent use; share one wrapper per process.
#pragma once

#include <any>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>

#include "prodsafe/core/error.hpp"
#include "prodsafe/idempotency/codec.hpp"
#include "prodsafe/idempotency/effect_store.hpp"
#include "prodsafe/idempotency/effect_type.hpp"
#include "prodsafe/idempotency/options.hpp"
#include "prodsafe/idempotency/outcome.hpp"
#include "prodsafe/tracing/tracer.hpp"

namespace prodsafe::idempotency {

class CommitJournal;
struct JournalEntry;
class LeaseKeeper;
class ResultCache;
class Instruments;

// Counters since construction.
struct WrapperStats {
  std::uint64_t executed = 0;    // effects run and committed (or journaled)
  std::uint64_t duplicates = 0;  // calls answered with a previous result
  std::uint64_t cache_hits = 0;  // of which from the in-process cache
  std::uint64_t conflicts = 0;
  std::uint64_t in_progress = 0;  // AlreadyInProgress thrown
  std::uint64_t recovered = 0;    // expired leases taken over
  std::uint64_t lease_lost = 0;
  std::uint64_t commit_pending = 0;         // results sent to the journal
  std::uint64_t journal_committed = 0;      // journaled results committed later
  std::uint64_t fail_open = 0;              // effects run unprotected
  std::uint64_t effect_errors = 0;          // effects that threw
  std::uint64_t failures_replayed = 0;      // EffectFailed thrown
  std::uint64_t encode_errors = 0;          // effects whose result could not be encoded
  std::uint64_t results_unavailable = 0;    // ResultUnavailable thrown
  std::uint64_t journal_damaged_lines = 0;  // damaged lines skipped in adopted journals
};

namespace detail {

template <class Fn>
decltype(auto) invoke_effect(Fn& fn, const EffectContext& ctx) {
  if constexpr (std::is_invocable_v<Fn&, const EffectContext&>) {
    return fn(ctx);
  } else {
    static_assert(std::is_invocable_v<Fn&>,
                  "the effect must be callable as fn(const EffectContext&) or fn()");
    return fn();
  }
}

template <class Fn>
using effect_result_t = std::decay_t<decltype(invoke_effect(std::declval<Fn&>(),
                                                            std::declval<const EffectContext&>()))>;

// An effect's result as stored: its encoding, or why there is none.
struct Encoded {
  std::string bytes{};  // the encoded result, or the encoder's message
  bool ok = true;
};

template <class R>
Encoded encode_result(const R& value) noexcept {
  try {
    return Encoded{Codec<R>::encode(value), true};
  } catch (const std::exception& error) {
    return Encoded{error.what(), false};
  } catch (...) {
    return Encoded{"the codec threw a non-standard exception", false};
  }
}

[[noreturn]] void throw_lease_lost(const std::string& key, std::uint64_t token, std::any result);
[[noreturn]] void rethrow_decode_error(const std::string& key, const DecodeError& error);

}  // namespace detail

class SideEffectWrapper {
 public:
  // Throws InvalidArgument when `store` is null or the options are
  // inconsistent (ttl not above lease, non-positive durations).
  explicit SideEffectWrapper(std::shared_ptr<EffectStore> store, WrapperOptions options = {});
  ~SideEffectWrapper();
  SideEffectWrapper(const SideEffectWrapper&) = delete;
  SideEffectWrapper& operator=(const SideEffectWrapper&) = delete;

  // Runs `fn` at most once per (type, entity_id) across every process sharing
  // the store, for the record's TTL. `fn` is fn(const EffectContext&) or fn(),
  // returning a value Codec can encode (void is not allowed: return a status).
  template <class Fn>
  Outcome<detail::effect_result_t<Fn>> execute_once(const EffectType& type,
                                                    std::string_view entity_id, Fn&& fn,
                                                    const CallOptions& call = {}) {
    using R = detail::effect_result_t<Fn>;
    static_assert(!std::is_void_v<R>, "the effect must return a value to cache (e.g. a status)");
    std::optional<R> produced;
    // The effect's exceptions propagate; the codec's never do, because once
    // the effect has run its claim must not be released (see Encoded).
    const Runner runner = [&fn, &produced](const EffectContext& ctx) {
      produced.emplace(detail::invoke_effect(fn, ctx));
      return detail::encode_result<R>(*produced);
    };
    Raw raw = execute_raw(type, entity_id, runner, call);
    if (raw.lease_lost)
      detail::throw_lease_lost(raw.key, raw.token, std::any(std::move(*produced)));
    Outcome<R> outcome;
    outcome.executed = raw.executed;
    outcome.recovered = raw.recovered;
    outcome.commit_pending = raw.commit_pending;
    outcome.unprotected = raw.unprotected;
    outcome.from_cache = raw.from_cache;
    outcome.result_unavailable = raw.result_unavailable;
    outcome.key = std::move(raw.key);
    outcome.fencing_token = raw.token;
    if (produced) {
      outcome.result = std::move(*produced);
    } else {
      try {
        outcome.result = Codec<R>::decode(raw.result);
      } catch (const DecodeError& error) {
        detail::rethrow_decode_error(outcome.key, error);
      }
    }
    return outcome;
  }

  // Tries to commit every journaled result now; returns how many remain.
  // Also done at construction and by the background thread every
  // journal_flush_interval; a call first tries to commit its own key's
  // journaled result, if any.
  std::size_t flush_journal();
  // Where results wait when their commit cannot reach the store.
  [[nodiscard]] std::size_t journal_pending() const;

  [[nodiscard]] WrapperStats stats() const;
  [[nodiscard]] EffectStore& store() noexcept { return *store_; }
  [[nodiscard]] const WrapperOptions& options() const noexcept { return options_; }

 private:
  using Runner = std::function<detail::Encoded(const EffectContext&)>;
  struct Raw {
    bool executed = false;
    bool recovered = false;
    bool commit_pending = false;
    bool unprotected = false;
    bool from_cache = false;
    bool lease_lost = false;
    bool result_unavailable = false;
    std::string key{};
    std::uint64_t token = 0;
    std::string result{};
  };
  struct Resolved;

  Raw execute_raw(const EffectType& type, std::string_view entity_id, const Runner& runner,
                  const CallOptions& call);
  // execute_raw's work; `trace` is the call's span context when tracing, for
  // the steps' child spans, else null.
  Raw execute_steps(const EffectType& type, std::string_view entity_id, const Runner& runner,
                    const CallOptions& call, const tracing::TraceContext* trace);
  Claim claim_or_wait(const std::string& key, const Resolved& policy);
  Raw run_and_commit(std::string_view type, std::string key, const Claim& claim,
                     Clock::SteadyTime claimed_at, const Runner& runner, const Resolved& policy,
                     const tracing::TraceContext* trace);
  Raw run_unprotected(std::string_view type, std::string key, const Runner& runner,
                      const tracing::TraceContext* trace);
  // A child span of `trace` (a span that records nothing when it is null).
  [[nodiscard]] tracing::Span step_span(std::string_view name,
                                        const tracing::TraceContext* trace) const;
  void abandon(std::string_view type, const std::string& key, const Holder& holder,
               const Resolved& policy, const std::string& error, bool retryable);
  bool finish_with_retries(std::string_view type, const std::string& key, const Holder& holder,
                           FinalState state, const std::string& payload, const Resolved& policy,
                           FinishStatus& status);
  void journal(std::string_view type, const JournalEntry& entry);
  void keep_journaled(const JournalEntry& entry);
  void forget_journaled(const JournalEntry& entry);
  void background_loop();
  // Commits the journaled results (of `only_key`, if given); returns how many
  // remain in all.
  std::size_t flush(std::optional<std::string_view> only_key);
  void require_own_process() const;
  [[nodiscard]] Resolved resolve(const EffectType& type, const CallOptions& call) const;

  std::shared_ptr<EffectStore> store_;
  WrapperOptions options_;
  Clock& clock_;
  std::unique_ptr<Instruments> instruments_;
  std::unique_ptr<CommitJournal> journal_;
  std::unique_ptr<LeaseKeeper> lease_keeper_;
  std::unique_ptr<ResultCache> cache_;

  // Held while flushing the journal; guards flush_errors_.
  std::mutex flush_mutex_;
  // The last error logged per journaled key, so a failure that repeats every
  // flush is logged once.
  std::map<std::string, std::string, std::less<>> flush_errors_;

  // The lease renewals of journaled results (has its own mutex).
  struct JournalLeases;
  std::unique_ptr<JournalLeases> journal_leases_;

  // The thread that flushes the journal, with what it waits on. Leaked, not
  // destroyed, in a fork()ed child's copy (see fork() above).
  struct Background;
  std::unique_ptr<Background> background_;
  // The process that made the wrapper (see fork() above).
  const int pid_;
};

}  // namespace prodsafe::idempotency
