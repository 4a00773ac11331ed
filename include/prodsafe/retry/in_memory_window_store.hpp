// RetryWindowStore in this process; needs no Redis (component prodsafe::retry).
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "prodsafe/core/clock.hpp"
#include "prodsafe/retry/retry_window.hpp"

namespace prodsafe::retry {

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
