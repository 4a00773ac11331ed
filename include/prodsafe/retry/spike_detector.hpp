// Detects sudden surges of retries (the seed's RetrySpikeDetector).
//
//   RetrySpikeDetector spikes({.window = std::chrono::seconds(60), .multiplier = 3.0});
//   if (auto alert = spikes.record_retry()) page(alert->message);
//
// Retries are counted in a sliding window (`window`, moved in steps of
// window / slots_per_window). The baseline is the average count per window
// over the `baseline_windows` windows before the current one. record_retry()
// returns an alert when the current count reaches multiplier × baseline and
// at least `min_count`, and no alert was given within `cooldown`. Until one
// full window of history exists there is no baseline and no alert.
// Memory is fixed: (baseline_windows + 1) × slots_per_window counters. Time
// is read with Clock::coarse_steady_now() (a few ms of resolution, a few ns
// per read), far finer than a slot.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "prodsafe/core/clock.hpp"

namespace prodsafe::metrics {
class Registry;
class Counter;
}  // namespace prodsafe::metrics

namespace prodsafe::retry {

struct SpikeOptions {
  // More than 0 and at most 24 h. Default: 60 s.
  std::chrono::milliseconds window = std::chrono::seconds(60);
  // Resolution of the sliding window. Default: 10.
  int slots_per_window = 10;
  // Windows averaged into the baseline. Default: 10.
  int baseline_windows = 10;
  // A finite number >= 1. Default: 3.0.
  double multiplier = 3.0;
  // No alert below this many retries in the window. Default: 10.
  std::uint64_t min_count = 10;
  // Quiet time after an alert; not negative. milliseconds::max() alerts once
  // and never again. Default: 5 minutes.
  std::chrono::milliseconds cooldown = std::chrono::minutes(5);
  // Default: SystemClock::instance(); must outlive the detector.
  Clock* clock = nullptr;
  // The job_type label of prodsafe_retry_spikes_total. Default: "default".
  std::string job_type = "default";
  // Where that counter goes (docs/metrics.md). Default: nullptr,
  // metrics::default_registry(). Must outlive the detector.
  metrics::Registry* metrics = nullptr;
};

struct SpikeAlert {
  std::uint64_t count = 0;     // retries in the current window
  double rate_per_second = 0;  // count / window
  double baseline = 0;         // average retries per window before it
  double multiplier = 0;       // count / baseline (infinite when the baseline is 0)
  double threshold_multiplier = 0;
  std::chrono::milliseconds window{0};
  std::chrono::system_clock::time_point at{};
  std::string message{};
};

class RetrySpikeDetector {
 public:
  // Throws InvalidArgument when an option is out of its range (above), or for
  // a non-positive slot count or baseline window count.
  explicit RetrySpikeDetector(SpikeOptions options = {});

  // Counts `count` retries now; returns an alert when they make a spike.
  std::optional<SpikeAlert> record_retry(std::uint64_t count = 1);

  // Retries in the current window, and the baseline per window.
  [[nodiscard]] std::uint64_t current_count();
  [[nodiscard]] std::optional<double> baseline();
  [[nodiscard]] std::uint64_t alerts() const;

 private:
  void advance_to(std::int64_t slot);
  [[nodiscard]] std::optional<double> baseline_locked() const;
  [[nodiscard]] std::int64_t slot_of(Clock::SteadyTime time) const;

  SpikeOptions options_;
  Clock& clock_;
  metrics::Counter* spikes_series_ = nullptr;
  const std::int64_t slot_ns_;
  const std::int64_t slots_;      // slots per window (S)
  const std::int64_t ring_size_;  // (B + 1) * S
  // Guards ring_, current_slot_, slot_end_, first_slot_, current_sum_,
  // baseline_sum_, last_alert_ and alerts_ (the constructor sets them first).
  mutable std::mutex mutex_;
  std::vector<std::uint64_t> ring_;
  std::int64_t current_slot_ = 0;
  // When current_slot_ ends: a record before it needs no division.
  Clock::SteadyTime slot_end_{};
  std::int64_t first_slot_ = 0;
  std::uint64_t current_sum_ = 0;
  std::uint64_t baseline_sum_ = 0;
  std::optional<Clock::SteadyTime> last_alert_;
  std::uint64_t alerts_ = 0;
};

}  // namespace prodsafe::retry
