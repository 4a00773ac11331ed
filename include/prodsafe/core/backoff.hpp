// Backoff delays with jitter, by the formulas of AWS's "Exponential Backoff
// and Jitter" (Marc Brooker, 2015). `retry` counts from 0 for the delay
// before the second attempt.
//
//   none:         min(cap, base * 2^retry)
//   full:         uniform(0, min(cap, base * 2^retry))
//   equal:        t = min(cap, base * 2^retry); t/2 + uniform(0, t/2)
//   decorrelated: min(cap, uniform(base, previous * 3)), previous starting at base
//
// Thread safety: a Backoff holds its random engine; use one per retry loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace prodsafe {

enum class Jitter { kNone, kFull, kEqual, kDecorrelated };

// The longest cap a Backoff (and so RetryPolicy::max_delay) accepts: a delay
// must stay a number of milliseconds that a clock can sleep and add to a
// time point, and a retry a day later is no longer a retry.
inline constexpr std::chrono::milliseconds kMaxBackoffDelay = std::chrono::hours(24);

class Backoff {
 public:
  // `seed` 0 draws one from std::random_device. Throws InvalidArgument unless
  // 1 ms <= base <= cap <= kMaxBackoffDelay.
  Backoff(Jitter jitter, std::chrono::milliseconds base, std::chrono::milliseconds cap,
          std::uint64_t seed = 0);

  // The delay before retry number `retry` (0 for the first retry).
  std::chrono::milliseconds next(int retry);

 private:
  double uniform(double low, double high);

  Jitter jitter_;
  double base_ms_;
  double cap_ms_;
  double previous_ms_;
  std::mt19937_64 random_;
};

}  // namespace prodsafe
