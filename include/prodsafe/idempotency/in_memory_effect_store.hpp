// Effect records in this process's memory, for single-process users and fast
// deterministic tests. Same semantics as RedisEffectStore, with leases and
// TTLs read from the injected clock. Expired records are removed as they are
// met and by a sweep every 1,024 operations, so memory follows the live set.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>

#include "prodsafe/core/clock.hpp"
#include "prodsafe/idempotency/effect_store.hpp"

namespace prodsafe::idempotency {

class InMemoryEffectStore final : public EffectStore {
 public:
  // `clock` must outlive the store. Default: SystemClock::instance().
  explicit InMemoryEffectStore(Clock* clock = nullptr);

  Claim claim(std::string_view key, std::string_view fingerprint, std::chrono::milliseconds lease,
              std::chrono::milliseconds ttl) override;
  FinishStatus finish(std::string_view key, const Holder& holder, FinalState state,
                      std::string_view payload, std::string_view fingerprint,
                      std::chrono::milliseconds ttl) override;
  bool release(std::string_view key, const Holder& holder) override;
  bool renew(std::string_view key, const Holder& holder, std::chrono::milliseconds lease,
             std::chrono::milliseconds ttl, std::string_view fingerprint) override;
  std::optional<EffectRecord> inspect(std::string_view key) override;
  bool clear(std::string_view key) override;
  // "memory <random id>": unique to this object, so no other store (or
  // process) ever adopts its journaled results.
  [[nodiscard]] std::string identity() const override;

  // Records currently held (expired ones included until swept).
  [[nodiscard]] std::size_t size() const;

 private:
  struct Record {
    std::string state;
    std::uint64_t token = 0;
    std::string holder_id;
    std::string fingerprint;
    std::string result;
    std::string error;
    Clock::SteadyTime lease_until{};
    Clock::SteadyTime expires_at{};
    bool revived = false;  // written anew by a renewal, with an old token

    [[nodiscard]] bool held_by(const Holder& holder) const;
  };

  // The live record under `key`, or null (an expired one is erased).
  Record* find_live(const std::string& key, Clock::SteadyTime now);
  void maybe_sweep(Clock::SteadyTime now);

  Clock& clock_;
  const std::string identity_;
  // Guards the fields below.
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Record> records_;
  std::size_t operations_ = 0;
  // The highest token issued: a record that starts a new lifetime starts
  // above it, so tokens keep growing when a record expires or is cleared.
  std::uint64_t last_token_ = 0;
};

}  // namespace prodsafe::idempotency
