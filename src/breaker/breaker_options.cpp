#include <cmath>
#include <string_view>

#include <fmt/format.h>

#include "breaker_options.hpp"
#include "prodsafe/core/error.hpp"

namespace prodsafe::breaker {

BreakerRules CircuitBreakerOptions::rules() const noexcept {
  return BreakerRules{.failure_threshold = failure_threshold,
                      .time_window = time_window,
                      .window_buckets = window_buckets,
                      .failure_ratio = failure_ratio,
                      .minimum_throughput = minimum_throughput,
                      .break_duration = break_duration,
                      .break_multiplier = break_multiplier,
                      .max_break_duration = max_break_duration,
                      .half_open_max_probes = half_open_max_probes,
                      .max_half_open_wait = max_half_open_wait};
}

namespace detail {

void validate_breaker(const std::string& job_type, const CircuitBreakerOptions& o) {
  if (job_type.empty() || job_type.size() > 256) {
    throw InvalidArgument("circuit breaker job type must be 1 to 256 characters");
  }
  for (char c : job_type) {
    if (c == ':' || static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      throw InvalidArgument(fmt::format(
          "circuit breaker job type '{}' contains ':' or a control character", job_type));
    }
  }
  auto refuse = [](std::string_view field, std::string_view range, auto value) {
    throw InvalidArgument(
        fmt::format("CircuitBreakerOptions::{} must be {}, got {}", field, range, value));
  };
  // Durations above a day would overflow the break arithmetic (break ×
  // multiplier^trips) and the store's millisecond fields.
  constexpr auto kMaxDuration = std::chrono::hours(24);
  auto duration = [&](std::string_view field, milliseconds value) {
    if (value.count() <= 0 || value > kMaxDuration) {
      refuse(field, "more than 0 and at most 24 h", fmt::format("{} ms", value.count()));
    }
  };
  if (o.failure_threshold == 0) refuse("failure_threshold", "at least 1", o.failure_threshold);
  duration("time_window", o.time_window);
  if (o.window_buckets <= 0 || o.window_buckets > 1000) {
    refuse("window_buckets", "1 to 1000", o.window_buckets);
  }
  // Written so that NaN, which fails every comparison, is refused too.
  if (!(o.failure_ratio >= 0 && o.failure_ratio <= 1)) {
    refuse("failure_ratio", "in [0, 1]", o.failure_ratio);
  }
  duration("break_duration", o.break_duration);
  if (!(o.break_multiplier >= 1 && std::isfinite(o.break_multiplier))) {
    refuse("break_multiplier", "a finite number >= 1", o.break_multiplier);
  }
  duration("max_break_duration", o.max_break_duration);
  if (o.max_break_duration < o.break_duration) {
    refuse("max_break_duration",
           fmt::format("at least break_duration ({} ms)", o.break_duration.count()),
           fmt::format("{} ms", o.max_break_duration.count()));
  }
  if (o.half_open_max_probes <= 0 || o.half_open_max_probes > 100) {
    refuse("half_open_max_probes", "1 to 100", o.half_open_max_probes);
  }
  duration("max_half_open_wait", o.max_half_open_wait);
  duration("staleness", o.staleness);
}

}  // namespace detail
}  // namespace prodsafe::breaker
