// Metric and label names as the Prometheus data model allows them
// (https://prometheus.io/docs/concepts/data_model/). Public so that anyone
// can check a name before using it (as prometheus-cpp's CheckLabelName).
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace prodsafe::metrics {

// [a-zA-Z_:][a-zA-Z0-9_:]*
[[nodiscard]] bool is_valid_metric_name(std::string_view name) noexcept;
// [a-zA-Z_][a-zA-Z0-9_]*, and not starting with "__" (reserved).
[[nodiscard]] bool is_valid_label_name(std::string_view name) noexcept;

// `value` with every ill-formed UTF-8 sequence replaced by U+FFFD, one per
// maximal ill-formed subpart (as the Unicode standard recommends, and as
// nlohmann::json's error_handler_t::replace, which the alert webhooks use).
// Prometheus refuses a whole scrape over one label value that is not UTF-8.
[[nodiscard]] std::string sanitize_utf8(std::string_view value);

}  // namespace prodsafe::metrics
