#include "prodsafe/retry/spike_detector.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/registry.hpp"

namespace prodsafe::retry {
namespace {

Clock& pick(Clock* clock) { return clock != nullptr ? *clock : SystemClock::instance(); }

std::int64_t validated_slot_ns(const SpikeOptions& options) {
  if (options.window.count() <= 0 || options.window > std::chrono::hours(24)) {
    throw InvalidArgument(
        fmt::format("SpikeOptions::window must be more than 0 and at most 24 h, got {} ms",
                    options.window.count()));
  }
  if (options.slots_per_window <= 0 || options.baseline_windows <= 0) {
    throw InvalidArgument("SpikeOptions needs a positive slots_per_window and baseline_windows");
  }
  // NaN fails every comparison: "not below 1" would let it through.
  if (!std::isfinite(options.multiplier) || options.multiplier < 1.0) {
    throw InvalidArgument(fmt::format(
        "SpikeOptions::multiplier must be a finite number >= 1, got {}", options.multiplier));
  }
  if (options.cooldown.count() < 0) {
    throw InvalidArgument(fmt::format("SpikeOptions::cooldown must not be negative, got {} ms",
                                      options.cooldown.count()));
  }
  const auto window_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(options.window).count();
  return std::max<std::int64_t>(1, window_ns / options.slots_per_window);
}

}  // namespace

RetrySpikeDetector::RetrySpikeDetector(SpikeOptions options)
    : options_(options),
      clock_(pick(options.clock)),
      slot_ns_(validated_slot_ns(options)),
      slots_(options.slots_per_window),
      ring_size_(static_cast<std::int64_t>(options.baseline_windows + 1) *
                 options.slots_per_window),
      ring_(static_cast<std::size_t>(ring_size_), 0) {
  metrics::Registry& registry =
      options_.metrics != nullptr ? *options_.metrics : metrics::default_registry();
  spikes_series_ = &registry
                        .counter("prodsafe_retry_spikes_total",
                                 "Retry spikes detected (alerts given), by job type.", {"job_type"})
                        .labels({options_.job_type});
  current_slot_ = first_slot_ = slot_of(clock_.coarse_steady_now());
  slot_end_ = Clock::SteadyTime(std::chrono::nanoseconds((current_slot_ + 1) * slot_ns_));
}

std::int64_t RetrySpikeDetector::slot_of(Clock::SteadyTime time) const {
  return time.time_since_epoch().count() / slot_ns_;
}

void RetrySpikeDetector::advance_to(std::int64_t slot) {
  if (slot <= current_slot_) return;
  slot_end_ = Clock::SteadyTime(std::chrono::nanoseconds((slot + 1) * slot_ns_));
  if (slot - current_slot_ >= ring_size_) {
    std::fill(ring_.begin(), ring_.end(), 0);
    current_sum_ = baseline_sum_ = 0;
    current_slot_ = slot;
    return;
  }
  auto at = [this](std::int64_t s) -> std::uint64_t& {
    return ring_[static_cast<std::size_t>(((s % ring_size_) + ring_size_) % ring_size_)];
  };
  while (current_slot_ < slot) {
    const std::int64_t next = current_slot_ + 1;
    const std::uint64_t leaving_window = at(next - slots_);
    current_sum_ -= leaving_window;
    baseline_sum_ += leaving_window;
    baseline_sum_ -= at(next);  // next - ring_size_: leaves the baseline
    at(next) = 0;
    current_slot_ = next;
  }
}

std::optional<double> RetrySpikeDetector::baseline_locked() const {
  const std::int64_t history =
      std::min(current_slot_ - first_slot_ + 1 - slots_, ring_size_ - slots_);
  if (history < slots_) return std::nullopt;
  return static_cast<double>(baseline_sum_) * static_cast<double>(slots_) /
         static_cast<double>(history);
}

std::optional<SpikeAlert> RetrySpikeDetector::record_retry(std::uint64_t count) {
  const Clock::SteadyTime now = clock_.coarse_steady_now();
  std::lock_guard lock(mutex_);
  if (now >= slot_end_) advance_to(slot_of(now));
  ring_[static_cast<std::size_t>(current_slot_ % ring_size_)] += count;
  current_sum_ += count;

  if (current_sum_ < options_.min_count) return std::nullopt;
  const auto baseline = baseline_locked();
  if (!baseline) return std::nullopt;
  if (static_cast<double>(current_sum_) < options_.multiplier * *baseline) return std::nullopt;
  // Compared in whole milliseconds (exact: the cooldown is whole ones), so
  // that a cooldown of milliseconds::max() is not turned into nanoseconds.
  if (last_alert_ && std::chrono::duration_cast<std::chrono::milliseconds>(now - *last_alert_) <
                         options_.cooldown) {
    return std::nullopt;
  }
  last_alert_ = now;
  ++alerts_;
  spikes_series_->inc();

  SpikeAlert alert;
  alert.count = current_sum_;
  const double seconds = std::chrono::duration<double>(options_.window).count();
  alert.rate_per_second = static_cast<double>(current_sum_) / seconds;
  alert.baseline = *baseline;
  alert.multiplier = *baseline > 0 ? static_cast<double>(current_sum_) / *baseline
                                   : std::numeric_limits<double>::infinity();
  alert.threshold_multiplier = options_.multiplier;
  alert.window = options_.window;
  alert.at = clock_.system_now();
  const std::string against = *baseline > 0
                                  ? fmt::format("{:.1f}x the baseline of {:.1f} per window",
                                                alert.multiplier, alert.baseline)
                                  : std::string("after a baseline of no retries");
  alert.message = fmt::format(
      "retry spike: {} retries in the last {} ms ({:.1f}/s), {} (threshold {:.1f}x)", alert.count,
      options_.window.count(), alert.rate_per_second, against, options_.multiplier);
  return alert;
}

std::uint64_t RetrySpikeDetector::current_count() {
  std::lock_guard lock(mutex_);
  advance_to(slot_of(clock_.coarse_steady_now()));
  return current_sum_;
}

std::optional<double> RetrySpikeDetector::baseline() {
  std::lock_guard lock(mutex_);
  advance_to(slot_of(clock_.coarse_steady_now()));
  return baseline_locked();
}

std::uint64_t RetrySpikeDetector::alerts() const {
  std::lock_guard lock(mutex_);
  return alerts_;
}

}  // namespace prodsafe::retry
