// A retry window: a job's span from its first attempt to its final result,
// and the store port that keeps windows where every process can see them.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace prodsafe::retry {

struct RetryWindow {
  std::string job_id{};
  std::string job_type{};
  std::chrono::system_clock::time_point first_attempt{};
  std::chrono::system_clock::time_point last_attempt{};
  // Attempts so far; the first attempt is 1.
  int attempts = 0;
  // last_attempt - first_attempt.
  std::chrono::milliseconds duration{0};
  // Set by close_window(); nullopt while the window is open.
  std::optional<bool> success{};
};

// Where windows live. Implementations: RedisRetryWindowStore (shared by every
// process on the same Redis, times from the server's clock) and
// InMemoryRetryWindowStore (one process, times from the injected clock).
// Thread safety: implementations are safe for concurrent use.
class RetryWindowStore {
 public:
  virtual ~RetryWindowStore() = default;
  // Opens (or restarts, keeping nothing of the old one) the window of
  // `job_id` with one attempt; it expires `ttl` after this start, whatever
  // attempts follow. Every store sharing the windows sees it.
  virtual RetryWindow start(std::string_view job_id, std::string_view job_type,
                            std::chrono::milliseconds ttl) = 0;
  // Counts one more attempt, stamped now; nullopt when there is no such
  // window (never started, closed, or expired).
  virtual std::optional<RetryWindow> increment(std::string_view job_id) = 0;
  // Removes the window and returns it closed: `success` set, last_attempt
  // and duration running to the close (which is no attempt). nullopt when
  // there is none, as for increment().
  virtual std::optional<RetryWindow> close(std::string_view job_id, bool success) = 0;
};

}  // namespace prodsafe::retry
