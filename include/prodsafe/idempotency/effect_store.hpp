// The idempotency module's store port: where effect records live. Two
// implementations: RedisEffectStore (a fleet of processes) and
// InMemoryEffectStore (one process). Both decide leases with their own clock
// (Redis: the server's TIME), never the caller's.
//
// Keys passed here are logical ("effect:ORDER_PLACEMENT:42"); a store may
// prefix them. Thread safety: implementations are safe for concurrent use.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "prodsafe/idempotency/durability.hpp"

namespace prodsafe::idempotency {

enum class ClaimStatus {
  kClaimed,      // no record: the caller runs the effect
  kRecovered,    // the previous holder's lease expired, or it released its claim
                 // after the effect threw: the caller takes over with a higher
                 // token, and a previous run may have acted
  kCompleted,    // already done: payload is the encoded result
  kInProgress,   // another holder's lease is live: retry_after is what is left
  kConflict,     // another request's record: payload is the stored fingerprint
  kFailed,       // a recorded failure: payload is the recorded error
  kUnavailable,  // done, but its result could not be stored: payload says why
};

// One claim's identity. The token is the fencing token: it only grows, also
// across the loss of the record (eviction, deletion, expiry) where the store's
// clock allows it. The id is unique to this claim, so a claim whose record
// vanished and was claimed again is never mistaken for the new holder, whatever
// the tokens. commit, record_failure, renew and release act only for the
// current holder.
struct Holder {
  std::uint64_t token = 0;
  std::string id{};
};

struct Claim {
  ClaimStatus status = ClaimStatus::kClaimed;
  // The fencing token: for kClaimed/kRecovered the caller's, else the record's.
  std::uint64_t token = 0;
  // kClaimed/kRecovered: this claim's unique id (see Holder).
  std::string holder_id{};
  std::string payload{};
  // The record's stored fingerprint (empty when it has none, and for kClaimed).
  std::string fingerprint{};
  std::chrono::milliseconds retry_after{0};
  // kCompleted/kUnavailable: how long the record lives yet. A cached copy of
  // the result must not outlive it.
  std::chrono::milliseconds ttl_remaining{0};

  [[nodiscard]] Holder holder() const { return Holder{token, holder_id}; }
};

enum class FinishStatus { kDone, kLeaseLost };

// How a claim ends: the three final states a record can hold.
enum class FinalState {
  kCompleted,    // the effect ran; payload is its encoded result
  kFailed,       // the effect threw and its failure is kept; payload is the error
  kUnavailable,  // the effect ran but its result cannot be encoded; payload says why
};

// The state's name as stored ("completed", "failed", "unavailable").
[[nodiscard]] std::string_view to_string(FinalState state) noexcept;

// A record as stored, for tools and tests.
struct EffectRecord {
  std::string state{};  // in_progress, completed, failed, unavailable, released
  std::uint64_t token = 0;
  std::string holder_id{};
  std::string fingerprint{};
  std::string result{};
  std::string error{};
  std::chrono::milliseconds lease_remaining{0};  // in_progress only
  std::chrono::milliseconds ttl_remaining{0};
};

class EffectStore {
 public:
  virtual ~EffectStore() = default;

  // Every method throws StoreUnavailable (or Timeout) when the store cannot be
  // reached, ReplyError when it refuses (OOM, READONLY, ...), and DecodeError,
  // naming the key, when the stored record is not one.

  // Claims `key` for `lease`; a new or taken-over record lives for `ttl` from
  // now. A new record's token is above every token the store issued for the
  // key before (Redis: the server's time in microseconds, so this holds unless
  // the server's clock goes back).
  virtual Claim claim(std::string_view key, std::string_view fingerprint,
                      std::chrono::milliseconds lease, std::chrono::milliseconds ttl) = 0;
  // Ends the claim in `state` with `payload` if `holder` is still current
  // (kDone, also when it already ended so with this holder), else kLeaseLost.
  // The record keeps its expiry; one that vanished (expired, evicted, deleted)
  // and was not claimed since is written anew to live for `ttl`.
  virtual FinishStatus finish(std::string_view key, const Holder& holder, FinalState state,
                              std::string_view payload, std::string_view fingerprint,
                              std::chrono::milliseconds ttl) = 0;
  // Gives up the claim if `holder` is current, so the next claim runs the
  // effect (kRecovered, with a higher token). Returns false when it was not current.
  virtual bool release(std::string_view key, const Holder& holder) = 0;
  // If `holder` is current: extends the lease to `lease` from now and keeps
  // the record alive for at least `ttl` from now, so that neither the lease
  // nor the record ends under a live effect. A record that vanished (evicted,
  // deleted, expired) is written anew for `holder`, in progress, carrying
  // `fingerprint`. Returns false when another claim holds the record or it
  // has ended.
  virtual bool renew(std::string_view key, const Holder& holder, std::chrono::milliseconds lease,
                     std::chrono::milliseconds ttl, std::string_view fingerprint) = 0;
  // The record, or nullopt when there is none.
  virtual std::optional<EffectRecord> inspect(std::string_view key) = 0;
  // Deletes the record (e.g. to clear a recorded failure). Returns whether one existed.
  virtual bool clear(std::string_view key) = 0;
  // Durability (durability.hpp): claim() and finish() that count only once
  // `durability` is met. A store that can wait for replicas says so with
  // waits_for_replicas() and overrides both; a claim that falls short throws
  // ReplicationShortfall and is not used (the store gives it up on a best
  // effort), a finish that falls short throws ReplicationShortfall after it
  // took effect on the primary (the caller retries it: a finish by the same
  // holder is idempotent). The defaults run claim() and finish() when
  // durability is off, and throw ConfigError when it is on.
  [[nodiscard]] virtual bool waits_for_replicas() const noexcept { return false; }
  virtual Claim claim_durably(std::string_view key, std::string_view fingerprint,
                              std::chrono::milliseconds lease, std::chrono::milliseconds ttl,
                              const Durability& durability);
  virtual FinishStatus finish_durably(std::string_view key, const Holder& holder, FinalState state,
                                      std::string_view payload, std::string_view fingerprint,
                                      std::chrono::milliseconds ttl, const Durability& durability);

  // Names where the records live (for Redis: endpoint, database and key
  // prefix; never a password), so that a journaled result is committed only
  // into the store it was claimed in. Stable across processes for the same
  // store; unique to the object for stores that live in one process.
  [[nodiscard]] virtual std::string identity() const = 0;

  // Shorthands for finish().
  FinishStatus commit(std::string_view key, const Holder& holder, std::string_view result,
                      std::string_view fingerprint, std::chrono::milliseconds ttl) {
    return finish(key, holder, FinalState::kCompleted, result, fingerprint, ttl);
  }
  FinishStatus record_failure(std::string_view key, const Holder& holder, std::string_view error,
                              std::string_view fingerprint, std::chrono::milliseconds ttl) {
    return finish(key, holder, FinalState::kFailed, error, fingerprint, ttl);
  }
};

}  // namespace prodsafe::idempotency
