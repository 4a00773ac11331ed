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

namespace prodsafe::idempotency {

enum class ClaimStatus {
  kClaimed,     // no live record: the caller runs the effect
  kRecovered,   // the holder's lease expired: the caller takes over, token + 1
  kCompleted,   // already done: payload is the encoded result
  kInProgress,  // another holder's lease is live: retry_after is what is left
  kConflict,    // another request's record: payload is the stored fingerprint
  kFailed,      // a recorded failure: payload is the recorded error
};

struct Claim {
  ClaimStatus status = ClaimStatus::kClaimed;
  // The fencing token: for kClaimed/kRecovered the caller's, else the record's.
  std::uint64_t token = 0;
  std::string payload{};
  std::chrono::milliseconds retry_after{0};
};

enum class FinishStatus { kDone, kLeaseLost };

// A record as stored, for tools and tests.
struct EffectRecord {
  std::string state{};  // in_progress, completed, failed, released
  std::uint64_t token = 0;
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
  // reached and DecodeError, naming the key, when the stored record is not one.

  // Claims `key` for `lease`; a new or recovered record lives for `ttl` from now.
  virtual Claim claim(std::string_view key, std::string_view fingerprint,
                      std::chrono::milliseconds lease, std::chrono::milliseconds ttl) = 0;
  // Stores the result if `token` is still current (kDone, also when it already
  // was committed with this token), else kLeaseLost. The record keeps the
  // expiry its claim set; one that vanished (expired, evicted) is written anew
  // to live for `ttl`.
  virtual FinishStatus commit(std::string_view key, std::uint64_t token, std::string_view result,
                              std::string_view fingerprint, std::chrono::milliseconds ttl) = 0;
  // Keeps a FAILED record carrying `error` if `token` is current.
  virtual FinishStatus record_failure(std::string_view key, std::uint64_t token,
                                      std::string_view error, std::string_view fingerprint,
                                      std::chrono::milliseconds ttl) = 0;
  // Gives up the claim if `token` is current, so the next claim runs the
  // effect (with token + 1). Returns false when the token was not current.
  virtual bool release(std::string_view key, std::uint64_t token) = 0;
  // Extends the lease to `lease` from now if `token` is current.
  virtual bool renew(std::string_view key, std::uint64_t token,
                     std::chrono::milliseconds lease) = 0;
  // The record, or nullopt when there is none.
  virtual std::optional<EffectRecord> inspect(std::string_view key) = 0;
  // Deletes the record (e.g. to clear a recorded failure). Returns whether one existed.
  virtual bool clear(std::string_view key) = 0;
};

}  // namespace prodsafe::idempotency
