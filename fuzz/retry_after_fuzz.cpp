// Retry-After values (src/alerts/retry_after.hpp): parse_retry_after never
// throws, never asks for a negative wait or more than its ten-year cap, and
// reads plain delta-seconds exactly (up to that cap).
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "fuzz_support.hpp"
#include "retry_after.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using std::chrono::milliseconds;
  const std::string_view value = prodsafe::fuzz::as_text(data, size);
  // A fixed "now" keeps a finding reproducible.
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  const std::optional<milliseconds> wait = prodsafe::alerts::detail::parse_retry_after(value, now);
  constexpr milliseconds kCap = std::chrono::hours(24 * 365 * 10);
  if (wait) {
    prodsafe::fuzz::require(wait->count() >= 0, "a negative wait", value);
    prodsafe::fuzz::require(*wait <= kCap, "a wait beyond the cap", value);
  }
  // Up to nine digits, nothing else: exactly that many seconds.
  if (!value.empty() && value.size() <= 9 &&
      value.find_first_not_of("0123456789") == std::string_view::npos) {
    long long seconds = 0;
    for (char c : value) seconds = seconds * 10 + (c - '0');
    prodsafe::fuzz::require(wait && *wait == std::min(milliseconds(seconds * 1000), kCap),
                            "delta-seconds read wrongly", value);
  }
  return 0;
}
