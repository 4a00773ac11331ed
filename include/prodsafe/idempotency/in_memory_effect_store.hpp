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
  FinishStatus commit(std::string_view key, std::uint64_t token, std::string_view result,
                      std::string_view fingerprint, std::chrono::milliseconds ttl) override;
  FinishStatus record_failure(std::string_view key, std::uint64_t token, std::string_view error,
                              std::string_view fingerprint, std::chrono::milliseconds ttl) override;
  bool release(std::string_view key, std::uint64_t token) override;
  bool renew(std::string_view key, std::uint64_t token, std::chrono::milliseconds lease) override;
  std::optional<EffectRecord> inspect(std::string_view key) override;
  bool clear(std::string_view key) override;

  // Records currently held (expired ones included until swept).
  [[nodiscard]] std::size_t size() const;

 private:
  struct Record {
    std::string state;
    std::uint64_t token = 0;
    std::string fingerprint;
    std::string result;
    std::string error;
    Clock::SteadyTime lease_until{};
    Clock::SteadyTime expires_at{};
  };

  // The live record under `key`, or null (an expired one is erased).
  Record* find_live(const std::string& key, Clock::SteadyTime now);
  FinishStatus finish(std::string_view key, std::uint64_t token, const char* state,
                      std::string_view payload, std::string_view fingerprint,
                      std::chrono::milliseconds ttl);
  void maybe_sweep(Clock::SteadyTime now);

  Clock& clock_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Record> records_;
  std::size_t operations_ = 0;
};

}  // namespace prodsafe::idempotency
