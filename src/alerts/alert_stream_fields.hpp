// The field names of an alert stream entry (recent_alerts.hpp describes the
// format), shared by the writer (redis_alert_stream.cpp) and the reader
// (recent_alerts.cpp).
#pragma once

#include <string_view>

namespace prodsafe::alerts::detail {

inline constexpr std::string_view kFieldType = "type";
inline constexpr std::string_view kFieldMessage = "message";
inline constexpr std::string_view kFieldAtMs = "at_ms";
inline constexpr std::string_view kFieldInstance = "instance";
inline constexpr std::string_view kFieldJobType = "job_type";
inline constexpr std::string_view kFieldState = "state";
inline constexpr std::string_view kFieldPreviousState = "previous_state";
inline constexpr std::string_view kFieldFailureCount = "failure_count";
inline constexpr std::string_view kFieldThreshold = "threshold";
inline constexpr std::string_view kFieldWindowMs = "window_ms";
// Followed by the AlertContext::extra entry's name.
inline constexpr std::string_view kExtraPrefix = "extra.";

}  // namespace prodsafe::alerts::detail
