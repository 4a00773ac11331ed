#include "prodsafe/retry/retry_window_tracker.hpp"

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::retry {
namespace {

void validate_id(std::string_view what, std::string_view id) {
  if (id.empty()) throw InvalidArgument(fmt::format("{} is empty", what));
  if (id.size() > 512) throw InvalidArgument(fmt::format("{} is over 512 bytes", what));
  for (char c : id) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      throw InvalidArgument(fmt::format("{} contains a control character", what));
    }
  }
}

[[noreturn]] void unknown(std::string_view job_id) {
  throw InvalidArgument(fmt::format(
      "no open retry window for job '{}': it was never started, was closed, or expired after "
      "its ttl; call start_window() first",
      job_id));
}

}  // namespace

RetryWindowTracker::RetryWindowTracker(std::shared_ptr<RetryWindowStore> store,
                                       TrackerOptions options)
    : store_(std::move(store)), options_(options) {
  if (!store_) throw InvalidArgument("RetryWindowTracker needs a RetryWindowStore, got null");
  if (options_.ttl.count() <= 0) throw InvalidArgument("TrackerOptions::ttl must be positive");
}

RetryWindow RetryWindowTracker::start_window(std::string_view job_id, std::string_view job_type) {
  validate_id("job id", job_id);
  validate_id("job type", job_type);
  return store_->start(job_id, job_type, options_.ttl);
}

RetryWindow RetryWindowTracker::increment_attempt(std::string_view job_id) {
  validate_id("job id", job_id);
  auto window = store_->increment(job_id);
  if (!window) unknown(job_id);
  return *window;
}

RetryWindow RetryWindowTracker::close_window(std::string_view job_id, bool success) {
  validate_id("job id", job_id);
  auto window = store_->close(job_id, success);
  if (!window) unknown(job_id);
  return *window;
}

}  // namespace prodsafe::retry
