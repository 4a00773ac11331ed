#include "prodsafe/core/backoff.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe {

Backoff::Backoff(Jitter jitter, std::chrono::milliseconds base, std::chrono::milliseconds cap,
                 std::uint64_t seed)
    : jitter_(jitter),
      base_ms_(static_cast<double>(base.count())),
      cap_ms_(static_cast<double>(cap.count())),
      previous_ms_(static_cast<double>(base.count())),
      random_(seed != 0 ? seed : std::random_device{}()) {
  if (base.count() <= 0 || base > kMaxBackoffDelay) {
    throw InvalidArgument(fmt::format(
        "backoff base delay must be between 1 ms and 24 h (kMaxBackoffDelay), got {} ms",
        base.count()));
  }
  if (cap < base || cap > kMaxBackoffDelay) {
    throw InvalidArgument(fmt::format(
        "backoff cap must be between the base delay ({} ms) and 24 h (kMaxBackoffDelay), got {} "
        "ms",
        base.count(), cap.count()));
  }
}

double Backoff::uniform(double low, double high) {
  if (high <= low) return low;
  return std::uniform_real_distribution<double>(low, high)(random_);
}

std::chrono::milliseconds Backoff::next(int retry) {
  const double exponential =
      std::min(cap_ms_, base_ms_ * std::exp2(static_cast<double>(std::clamp(retry, 0, 62))));
  double delay = exponential;
  switch (jitter_) {
    case Jitter::kNone:
      break;
    case Jitter::kFull:
      delay = uniform(0, exponential);
      break;
    case Jitter::kEqual:
      delay = exponential / 2 + uniform(0, exponential / 2);
      break;
    case Jitter::kDecorrelated:
      delay = std::min(cap_ms_, uniform(base_ms_, previous_ms_ * 3));
      previous_ms_ = delay;
      break;
  }
  return std::chrono::milliseconds(static_cast<long long>(delay));
}

}  // namespace prodsafe
