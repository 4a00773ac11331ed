// Internal: reads an HTTP Retry-After header (RFC 9110, 10.2.3).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace prodsafe::alerts::detail {

// The wait `value` asks for, counted from `now`: delta-seconds ("120") or an
// HTTP-date (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", or the obsolete RFC
// 850 and asctime forms). A date already past gives 0; a huge number
// saturates at ten years. nullopt when the value is neither form.
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

}  // namespace prodsafe::alerts::detail
