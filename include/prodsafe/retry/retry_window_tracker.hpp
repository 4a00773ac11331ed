// Tracks retry windows (the seed's RetryWindowTracker): from a job's first
// attempt to its final result, visible to every process sharing the store.
//
//   RetryWindowTracker tracker(std::make_shared<RedisRetryWindowStore>(client));
//   tracker.start_window("job-123", "settlement");
//   tracker.increment_attempt("job-123");
//   RetryWindow window = tracker.close_window("job-123", /*success=*/true);
//
// Thread safety: safe for concurrent use.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "prodsafe/retry/retry_window.hpp"

namespace prodsafe::retry {

struct TrackerOptions {
  // A window expires this long after it was started (an open window older
  // than this is itself an anomaly). Default: 24 h.
  std::chrono::milliseconds ttl = std::chrono::hours(24);
};

class RetryWindowTracker {
 public:
  // Throws InvalidArgument when `store` is null or the ttl is not positive.
  explicit RetryWindowTracker(std::shared_ptr<RetryWindowStore> store, TrackerOptions options = {});

  // Opens the window (restarting one that exists) with its first attempt.
  // Throws InvalidArgument for an empty job id or one with control characters.
  RetryWindow start_window(std::string_view job_id, std::string_view job_type = "default");
  // Counts one more attempt. Throws InvalidArgument naming the job id when it
  // has no open window (never started, closed, or expired after the ttl).
  RetryWindow increment_attempt(std::string_view job_id);
  // Closes the window and returns it with its outcome. Throws InvalidArgument
  // like increment_attempt().
  RetryWindow close_window(std::string_view job_id, bool success);

 private:
  std::shared_ptr<RetryWindowStore> store_;
  TrackerOptions options_;
};

}  // namespace prodsafe::retry
