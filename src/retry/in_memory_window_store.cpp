#include "prodsafe/retry/in_memory_window_store.hpp"

#include "window_duration.hpp"

namespace prodsafe::retry {

using std::chrono::milliseconds;

InMemoryRetryWindowStore::InMemoryRetryWindowStore(Clock* clock)
    : clock_(clock != nullptr ? *clock : SystemClock::instance()) {}

RetryWindow InMemoryRetryWindowStore::start(std::string_view job_id, std::string_view job_type,
                                            milliseconds ttl) {
  RetryWindow window;
  window.job_id = std::string(job_id);
  window.job_type = std::string(job_type);
  window.first_attempt = window.last_attempt = clock_.system_now();
  window.attempts = 1;
  std::lock_guard lock(mutex_);
  const auto now = clock_.steady_now();
  if (++operations_ % 1024 == 0) {
    std::erase_if(windows_, [now](const auto& entry) { return entry.second.expires_at <= now; });
  }
  windows_[window.job_id] = Entry{window, now + ttl};
  return window;
}

std::optional<RetryWindow> InMemoryRetryWindowStore::increment(std::string_view job_id) {
  std::lock_guard lock(mutex_);
  const auto found = windows_.find(std::string(job_id));
  const auto now = clock_.steady_now();
  if (found == windows_.end()) return std::nullopt;
  if (found->second.expires_at <= now) {
    windows_.erase(found);
    return std::nullopt;
  }
  RetryWindow& window = found->second.window;
  window.attempts += 1;
  window.last_attempt = clock_.system_now();
  set_duration(window);
  return window;
}

std::optional<RetryWindow> InMemoryRetryWindowStore::close(std::string_view job_id, bool success) {
  std::lock_guard lock(mutex_);
  const auto found = windows_.find(std::string(job_id));
  if (found == windows_.end()) return std::nullopt;
  const bool expired = found->second.expires_at <= clock_.steady_now();
  RetryWindow window = std::move(found->second.window);
  windows_.erase(found);
  if (expired) return std::nullopt;
  window.last_attempt = clock_.system_now();
  set_duration(window);
  window.success = success;
  return window;
}

std::size_t InMemoryRetryWindowStore::size() const {
  std::lock_guard lock(mutex_);
  return windows_.size();
}

}  // namespace prodsafe::retry
