#include "prodsafe/core/clock.hpp"

#include <time.h>

#include <thread>

namespace prodsafe {

SystemClock& SystemClock::instance() {
  static SystemClock clock;
  return clock;
}

Clock::SteadyTime SystemClock::coarse_steady_now() const {
  timespec now{};
  // libstdc++'s steady_clock is CLOCK_MONOTONIC; the coarse variant counts
  // from the same origin, so the two can be compared.
  if (::clock_gettime(CLOCK_MONOTONIC_COARSE, &now) != 0) return steady_now();
  return SteadyTime(std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec));
}

void SystemClock::sleep_for(Duration duration) {
  if (duration > Duration::zero()) std::this_thread::sleep_for(duration);
}

ManualClock::ManualClock()
    : steady_(SteadyTime(std::chrono::hours(1))),
      // 2026-01-01T00:00:00Z
      system_(SystemTime(std::chrono::seconds(1767225600))) {}

Clock::SteadyTime ManualClock::steady_now() const {
  std::lock_guard lock(mutex_);
  return steady_;
}

Clock::SystemTime ManualClock::system_now() const {
  std::lock_guard lock(mutex_);
  return system_;
}

void ManualClock::sleep_for(Duration duration) {
  std::lock_guard lock(mutex_);
  ++sleep_count_;
  if (duration <= Duration::zero()) return;
  slept_ += duration;
  steady_ += duration;
  system_ += std::chrono::duration_cast<SystemTime::duration>(duration);
}

void ManualClock::advance(Duration duration) {
  if (duration <= Duration::zero()) return;
  std::lock_guard lock(mutex_);
  steady_ += duration;
  system_ += std::chrono::duration_cast<SystemTime::duration>(duration);
}

void ManualClock::set_system_time(SystemTime time) {
  std::lock_guard lock(mutex_);
  system_ = time;
}

Clock::Duration ManualClock::slept() const {
  std::lock_guard lock(mutex_);
  return slept_;
}

std::uint64_t ManualClock::sleep_count() const {
  std::lock_guard lock(mutex_);
  return sleep_count_;
}

}  // namespace prodsafe
