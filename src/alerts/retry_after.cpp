#include "retry_after.hpp"

#include <array>
#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

namespace prodsafe::alerts::detail {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::int64_t kMaxSeconds = 10LL * 365 * 24 * 3600;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// All digits, 1 to `max_digits` of them.
std::optional<int> number(std::string_view text, std::size_t max_digits) {
  if (text.empty() || text.size() > max_digits) return std::nullopt;
  int value = 0;
  for (const char c : text) {
    if (!is_digit(c)) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::optional<int> month(std::string_view name) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (std::size_t i = 0; i < kMonths.size(); ++i) {
    if (name == kMonths[i]) return static_cast<int>(i);
  }
  return std::nullopt;
}

// "08:49:37" into the tm.
bool time_of_day(std::string_view text, std::tm& tm) {
  if (text.size() != 8 || text[2] != ':' || text[5] != ':') return false;
  const auto hour = number(text.substr(0, 2), 2);
  const auto minute = number(text.substr(3, 2), 2);
  const auto second = number(text.substr(6, 2), 2);
  if (!hour || !minute || !second || *hour > 23 || *minute > 59 || *second > 60) return false;
  tm.tm_hour = *hour;
  tm.tm_min = *minute;
  tm.tm_sec = *second;
  return true;
}

std::vector<std::string_view> tokens(std::string_view text, std::string_view separators) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const std::size_t start = text.find_first_not_of(separators);
    if (start == std::string_view::npos) break;
    text.remove_prefix(start);
    const std::size_t end = std::min(text.find_first_of(separators), text.size());
    out.push_back(text.substr(0, end));
    text.remove_prefix(end);
  }
  return out;
}

// Seconds since the epoch of an HTTP-date (up to the year 9999: beyond what
// system_clock's nanoseconds can hold, so callers compare in seconds first).
std::optional<std::int64_t> http_date(std::string_view text) {
  std::tm tm{};
  std::optional<int> day;
  std::optional<int> year;
  std::optional<int> mon;
  std::string_view clock;
  if (text.find(',') != std::string_view::npos) {
    // IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" or RFC 850
    // "Sunday, 06-Nov-94 08:49:37 GMT".
    const bool rfc850 = text.find('-') != std::string_view::npos;
    const auto parts = tokens(text, rfc850 ? " ,-" : " ,");
    if (parts.size() != 6 || parts[5] != "GMT") return std::nullopt;
    day = number(parts[1], 2);
    mon = month(parts[2]);
    year = number(parts[3], rfc850 ? 2 : 4);
    if (rfc850 && year) *year += *year < 70 ? 2000 : 1900;
    clock = parts[4];
  } else {
    // asctime "Sun Nov  6 08:49:37 1994".
    const auto parts = tokens(text, " ");
    if (parts.size() != 5) return std::nullopt;
    mon = month(parts[1]);
    day = number(parts[2], 2);
    clock = parts[3];
    year = number(parts[4], 4);
  }
  if (!day || !mon || !year || *day < 1 || *day > 31 || *year < 1970) return std::nullopt;
  if (!time_of_day(clock, tm)) return std::nullopt;
  tm.tm_mday = *day;
  tm.tm_mon = *mon;
  tm.tm_year = *year - 1900;
  const std::time_t since_epoch = ::timegm(&tm);
  if (since_epoch == static_cast<std::time_t>(-1)) return std::nullopt;
  return static_cast<std::int64_t>(since_epoch);
}

}  // namespace

std::optional<milliseconds> parse_retry_after(std::string_view value,
                                              std::chrono::system_clock::time_point now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (is_digit(value.front())) {
    std::int64_t delta = 0;
    for (const char c : value) {
      if (!is_digit(c)) return std::nullopt;
      delta = std::min(delta * 10 + (c - '0'), kMaxSeconds);
    }
    return seconds(delta);
  }
  const auto when = http_date(value);
  if (!when) return std::nullopt;
  const std::int64_t now_s = std::chrono::duration_cast<seconds>(now.time_since_epoch()).count();
  if (*when - now_s > kMaxSeconds) return milliseconds(seconds(kMaxSeconds));
  const auto at = std::chrono::system_clock::time_point(seconds(*when));
  if (at <= now) return milliseconds(0);
  return std::min(std::chrono::duration_cast<milliseconds>(at - now),
                  milliseconds(seconds(kMaxSeconds)));
}

}  // namespace prodsafe::alerts::detail
