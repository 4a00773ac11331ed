// Time as a parameter: every prodsafe component that reads time or sleeps takes
// a Clock&, so tests move time by hand with ManualClock instead of sleeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace prodsafe {

// Thread safety: implementations must be safe to call from several threads.
class Clock {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  using SystemTime = std::chrono::system_clock::time_point;
  using Duration = std::chrono::nanoseconds;

  virtual ~Clock() = default;

  // Monotonic time, for durations, deadlines and timeouts.
  [[nodiscard]] virtual SteadyTime steady_now() const = 0;
  // The same clock read cheaply at a resolution of a few milliseconds, for
  // hot paths that bucket time into seconds (detectors, budgets). Default:
  // steady_now().
  [[nodiscard]] virtual SteadyTime coarse_steady_now() const { return steady_now(); }
  // Wall-clock time, for timestamps shown to people and stored records.
  [[nodiscard]] virtual SystemTime system_now() const = 0;
  // Blocks the calling thread for `duration` (ManualClock: advances instead).
  virtual void sleep_for(Duration duration) = 0;
};

// The real clocks of the process. Thread safety: stateless, safe everywhere.
class SystemClock final : public Clock {
 public:
  // The process-wide instance, for components given no clock.
  static SystemClock& instance();

  [[nodiscard]] SteadyTime steady_now() const override { return std::chrono::steady_clock::now(); }
  [[nodiscard]] SystemTime system_now() const override { return std::chrono::system_clock::now(); }
  // CLOCK_MONOTONIC_COARSE: the steady clock at tick resolution (typically
  // 1-4 ms) for a few nanoseconds, where a precise read costs tens.
  [[nodiscard]] SteadyTime coarse_steady_now() const override;
  void sleep_for(Duration duration) override;
};

// A clock that moves only when told. sleep_for() advances both clocks by the
// duration and returns at once, so code that sleeps runs instantly in tests.
// Thread safety: safe to share across threads.
class ManualClock final : public Clock {
 public:
  // Starts at steady time zero + 1 hour (so subtracting small durations never
  // underflows) and at system time 2026-01-01T00:00:00Z.
  ManualClock();

  [[nodiscard]] SteadyTime steady_now() const override;
  [[nodiscard]] SystemTime system_now() const override;
  void sleep_for(Duration duration) override;

  // Moves both clocks forward by `duration` (negative durations are ignored).
  void advance(Duration duration);
  // Sets the wall clock alone (wall clocks may jump; steady time does not).
  void set_system_time(SystemTime time);
  // Total time passed to sleep_for() so far.
  [[nodiscard]] Duration slept() const;
  // Number of sleep_for() calls so far.
  [[nodiscard]] std::uint64_t sleep_count() const;

 private:
  // Guards every field below.
  mutable std::mutex mutex_;
  SteadyTime steady_;
  SystemTime system_;
  Duration slept_{0};
  std::uint64_t sleep_count_ = 0;
};

}  // namespace prodsafe
