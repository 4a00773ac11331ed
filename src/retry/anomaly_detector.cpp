#include "prodsafe/retry/anomaly_detector.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/registry.hpp"

namespace prodsafe::retry {

std::string_view to_string(AnomalyType type) noexcept {
  switch (type) {
    case AnomalyType::kHighRetryRate:
      return "HIGH_RETRY_RATE";
    case AnomalyType::kLongRetryWindow:
      return "LONG_RETRY_WINDOW";
    case AnomalyType::kExcessiveAttempts:
      return "EXCESSIVE_ATTEMPTS";
  }
  return "UNKNOWN";
}

RetryAnomalyDetector::RetryAnomalyDetector(AnomalyThresholds thresholds)
    : thresholds_(thresholds),
      registry_(thresholds.metrics != nullptr ? *thresholds.metrics : metrics::default_registry()) {
  const auto& t = thresholds_;
  if (!(t.high_retry_rate > 0 && t.high_retry_rate <= 1)) {
    throw InvalidArgument(fmt::format(
        "AnomalyThresholds::high_retry_rate must be in (0, 1], got {}", t.high_retry_rate));
  }
  if (t.rate_window == 0 || t.rate_min_windows == 0 || t.rate_min_windows > t.rate_window) {
    throw InvalidArgument(
        fmt::format("AnomalyThresholds needs 0 < rate_min_windows ({}) <= rate_window ({})",
                    t.rate_min_windows, t.rate_window));
  }
  if (t.long_window.count() <= 0 || t.excessive_attempts < 2 || t.max_job_types == 0) {
    throw InvalidArgument(
        "AnomalyThresholds needs long_window > 0, excessive_attempts >= 2 and max_job_types > 0");
  }
}

std::vector<Anomaly> RetryAnomalyDetector::record_window(const RetryWindow& window) {
  std::vector<Anomaly> found = detect(window);
  if (found.empty()) return found;
  anomalies_.fetch_add(found.size(), std::memory_order_relaxed);
  auto& family =
      registry_.counter("prodsafe_retry_anomalies_total",
                        "Anomalous retry windows, by job type and rule.", {"job_type", "type"});
  for (const Anomaly& anomaly : found) {
    std::string type(to_string(anomaly.type));
    std::transform(type.begin(), type.end(), type.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    family.labels({anomaly.job_type, type}).inc();
  }
  return found;
}

std::vector<Anomaly> RetryAnomalyDetector::detect(const RetryWindow& window) {
  std::vector<Anomaly> found;
  if (window.attempts >= thresholds_.excessive_attempts) {
    found.push_back(
        {AnomalyType::kExcessiveAttempts, window.job_type, window.job_id,
         static_cast<double>(window.attempts), static_cast<double>(thresholds_.excessive_attempts),
         fmt::format("job {} ({}) needed {} attempts (threshold {})", window.job_id,
                     window.job_type, window.attempts, thresholds_.excessive_attempts)});
  }
  if (window.duration >= thresholds_.long_window) {
    found.push_back(
        {AnomalyType::kLongRetryWindow, window.job_type, window.job_id,
         static_cast<double>(window.duration.count()),
         static_cast<double>(thresholds_.long_window.count()),
         fmt::format("job {} ({}) retried for {} ms (threshold {} ms)", window.job_id,
                     window.job_type, window.duration.count(), thresholds_.long_window.count())});
  }

  std::lock_guard lock(mutex_);
  auto state = rates_.find(window.job_type);
  if (state == rates_.end()) {
    if (rates_.size() >= thresholds_.max_job_types) {
      ++untracked_;
      return found;
    }
    state = rates_.emplace(window.job_type, RateState{}).first;
  }
  RateState& rate = state->second;
  const bool retried = window.attempts > 1;
  rate.retried.push_back(retried);
  rate.retried_count += retried ? 1 : 0;
  if (rate.retried.size() > thresholds_.rate_window) {
    rate.retried_count -= rate.retried.front() ? 1 : 0;
    rate.retried.pop_front();
  }
  if (rate.retried.size() < thresholds_.rate_min_windows) return found;
  const double share =
      static_cast<double>(rate.retried_count) / static_cast<double>(rate.retried.size());
  const bool above = share >= thresholds_.high_retry_rate;
  if (above && !rate.above) {
    found.push_back(
        {AnomalyType::kHighRetryRate, window.job_type, window.job_id, share,
         thresholds_.high_retry_rate,
         fmt::format("{:.0f}% of the last {} {} jobs needed a retry (threshold {:.0f}%)",
                     share * 100, rate.retried.size(), window.job_type,
                     thresholds_.high_retry_rate * 100)});
  }
  rate.above = above;
  return found;
}

std::uint64_t RetryAnomalyDetector::untracked_windows() const {
  std::lock_guard lock(mutex_);
  return untracked_;
}

}  // namespace prodsafe::retry
