// Finds anomalous retry patterns in closed retry windows (the seed's
// RetryAnomalyDetector).
//
//   RetryAnomalyDetector detector({.excessive_attempts = 10});
//   for (const Anomaly& anomaly : detector.record_window(window)) alert(anomaly);
//
// Each rule fires when its value reaches its threshold (>=):
//   EXCESSIVE_ATTEMPTS  a window needed at least `excessive_attempts` attempts;
//   LONG_RETRY_WINDOW   a window lasted at least `long_window`;
//   HIGH_RETRY_RATE     among the last `rate_window` windows of a job type (once
//                       at least `rate_min_windows` were seen), the share that
//                       needed a retry reached `high_retry_rate`. It fires when
//                       the rate crosses the threshold and again only after the
//                       rate has fallen back below it, not on every window.
// Memory is bounded: `rate_window` flags per job type, for at most
// `max_job_types` job types (windows of further types skip the rate rule and
// are counted in untracked_windows()).
//
// Thread safety: safe for concurrent use.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "prodsafe/retry/retry_window.hpp"

namespace prodsafe::metrics {
class Registry;
}

namespace prodsafe::retry {

enum class AnomalyType { kHighRetryRate, kLongRetryWindow, kExcessiveAttempts };

// "HIGH_RETRY_RATE", "LONG_RETRY_WINDOW", "EXCESSIVE_ATTEMPTS".
[[nodiscard]] std::string_view to_string(AnomalyType type) noexcept;

struct Anomaly {
  AnomalyType type = AnomalyType::kExcessiveAttempts;
  std::string job_type{};
  std::string job_id{};  // the window that triggered it
  double value = 0;      // attempts, window milliseconds, or the retry rate (0..1)
  double threshold = 0;
  std::string message{};
};

struct AnomalyThresholds {
  // Default: 0.5 (half the recent windows needed a retry).
  double high_retry_rate = 0.5;
  // Windows per job type the rate is computed over. Default: 100.
  std::size_t rate_window = 100;
  // No rate anomaly before this many windows of the type. Default: 20.
  std::size_t rate_min_windows = 20;
  // Default: 5 minutes.
  std::chrono::milliseconds long_window = std::chrono::minutes(5);
  // Default: 10 attempts.
  int excessive_attempts = 10;
  // Default: 1,000.
  std::size_t max_job_types = 1000;
  // Where prodsafe_retry_anomalies_total{job_type, type} goes
  // (docs/metrics.md). Default: nullptr, metrics::default_registry(). Must
  // outlive the detector.
  metrics::Registry* metrics = nullptr;
};

class RetryAnomalyDetector {
 public:
  // Throws InvalidArgument for thresholds out of range (rate outside (0, 1],
  // zero window sizes, rate_min_windows > rate_window, non-positive limits).
  explicit RetryAnomalyDetector(AnomalyThresholds thresholds = {});

  // The anomalies this window shows (often none).
  std::vector<Anomaly> record_window(const RetryWindow& window);

  [[nodiscard]] std::uint64_t untracked_windows() const;
  [[nodiscard]] std::uint64_t anomalies() const noexcept { return anomalies_.load(); }
  [[nodiscard]] const AnomalyThresholds& thresholds() const noexcept { return thresholds_; }

 private:
  std::vector<Anomaly> detect(const RetryWindow& window);
  struct RateState {
    std::deque<bool> retried;  // newest at the back
    std::size_t retried_count = 0;
    bool above = false;
  };

  AnomalyThresholds thresholds_;
  // Guards rates_ and untracked_.
  mutable std::mutex mutex_;
  std::unordered_map<std::string, RateState> rates_;
  std::uint64_t untracked_ = 0;
  metrics::Registry& registry_;
  std::atomic<std::uint64_t> anomalies_{0};
};

}  // namespace prodsafe::retry
