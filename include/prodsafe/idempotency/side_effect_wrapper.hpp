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
// result), EffectFailed (a recorded failure), StoreUnavailable (the store is
// down at claim time: the effect was NOT run, unless the type fails open),
// DecodeError (a corrupted record), and whatever the effect itself throws
// (rethrown after the claim is released or the failure recorded).
//
// Thread safety: safe for concurrent use; share one wrapper per process.
#pragma once

#include <any>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "prodsafe/core/error.hpp"
#include "prodsafe/idempotency/codec.hpp"
#include "prodsafe/idempotency/effect_store.hpp"
#include "prodsafe/idempotency/effect_type.hpp"
#include "prodsafe/idempotency/options.hpp"
#include "prodsafe/idempotency/outcome.hpp"

namespace prodsafe::idempotency {

class CommitJournal;
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
  std::uint64_t commit_pending = 0;     // results sent to the journal
  std::uint64_t journal_committed = 0;  // journaled results committed later
  std::uint64_t fail_open = 0;          // effects run unprotected
  std::uint64_t effect_errors = 0;      // effects that threw
  std::uint64_t failures_replayed = 0;  // EffectFailed thrown
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
    const Runner runner = [&fn, &produced](const EffectContext& ctx) {
      produced.emplace(detail::invoke_effect(fn, ctx));
      return Codec<R>::encode(*produced);
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
  // Also done at construction and, while any are pending, before each call.
  std::size_t flush_journal();
  // Where results wait when their commit cannot reach the store.
  [[nodiscard]] std::size_t journal_pending() const;

  [[nodiscard]] WrapperStats stats() const;
  [[nodiscard]] EffectStore& store() noexcept { return *store_; }
  [[nodiscard]] const WrapperOptions& options() const noexcept { return options_; }

 private:
  using Runner = std::function<std::string(const EffectContext&)>;
  struct Raw {
    bool executed = false;
    bool recovered = false;
    bool commit_pending = false;
    bool unprotected = false;
    bool from_cache = false;
    bool lease_lost = false;
    std::string key{};
    std::uint64_t token = 0;
    std::string result{};
  };
  struct Resolved;

  Raw execute_raw(const EffectType& type, std::string_view entity_id, const Runner& runner,
                  const CallOptions& call);
  Claim claim_or_wait(const std::string& key, const Resolved& policy);
  Raw run_and_commit(std::string_view type, std::string key, const Claim& claim,
                     const Runner& runner, const Resolved& policy);
  Raw run_unprotected(std::string_view type, std::string key, const Runner& runner);
  void abandon(std::string_view type, const std::string& key, std::uint64_t token,
               const Resolved& policy, const std::string& error);
  bool commit_with_retries(const std::string& key, std::uint64_t token, const std::string& result,
                           const Resolved& policy, FinishStatus& status);
  [[nodiscard]] Resolved resolve(const EffectType& type, const CallOptions& call) const;

  std::shared_ptr<EffectStore> store_;
  WrapperOptions options_;
  Clock& clock_;
  std::unique_ptr<CommitJournal> journal_;
  std::unique_ptr<LeaseKeeper> lease_keeper_;
  std::unique_ptr<ResultCache> cache_;
  std::mutex flush_mutex_;

  std::unique_ptr<Instruments> instruments_;
};

}  // namespace prodsafe::idempotency
