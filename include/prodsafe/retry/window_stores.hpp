// The two RetryWindowStore implementations.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "prodsafe/core/clock.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/retry/retry_window.hpp"

namespace prodsafe::retry {

// Windows in Redis under "retry:window:<job_id>" (behind the client's key
// prefix), one Lua round trip per operation, times from the server's TIME.
// A key holding something else gives DecodeError naming it.
// Thread safety: safe for concurrent use.
class RedisRetryWindowStore final : public RetryWindowStore {
 public:
  explicit RedisRetryWindowStore(std::shared_ptr<redis::Client> client);
  RetryWindow start(std::string_view job_id, std::string_view job_type,
                    std::chrono::milliseconds ttl) override;
  std::optional<RetryWindow> increment(std::string_view job_id) override;
  std::optional<RetryWindow> close(std::string_view job_id, bool success) override;

 private:
  std::optional<RetryWindow> call(std::string_view job_id, std::string_view op,
                                  std::string_view job_type, std::chrono::milliseconds ttl);
  std::shared_ptr<redis::Client> client_;
};

// Windows in this process. Expired windows are dropped as they are met and by
// a sweep every 1,024 operations. Thread safety: safe for concurrent use.
class InMemoryRetryWindowStore final : public RetryWindowStore {
 public:
  // `clock` must outlive the store. Default: SystemClock::instance().
  explicit InMemoryRetryWindowStore(Clock* clock = nullptr);
  RetryWindow start(std::string_view job_id, std::string_view job_type,
                    std::chrono::milliseconds ttl) override;
  std::optional<RetryWindow> increment(std::string_view job_id) override;
  std::optional<RetryWindow> close(std::string_view job_id, bool success) override;
  [[nodiscard]] std::size_t size() const;

 private:
  struct Entry {
    RetryWindow window;
    Clock::SteadyTime expires_at;
  };
  Clock& clock_;
  // Guards windows_ and operations_.
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> windows_;
  std::size_t operations_ = 0;
};

}  // namespace prodsafe::retry
