// Metric and label names as the Prometheus data model allows them
// (https://prometheus.io/docs/concepts/data_model/). Public so that anyone
// can check a name before using it (as prometheus-cpp's CheckLabelName).
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace prodsafe::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// [a-zA-Z_:][a-zA-Z0-9_:]*
[[nodiscard]] bool is_valid_metric_name(std::string_view name) noexcept;
// [a-zA-Z_][a-zA-Z0-9_]*, and not starting with "__" (reserved).
[[nodiscard]] bool is_valid_label_name(std::string_view name) noexcept;

// Every name a family of this type takes on a page: its own (HELP and TYPE),
// the names of the samples it writes (a histogram's `_bucket`, `_sum` and
// `_count`), and for a counter the other name OpenMetrics gives it (counter
// `x` is written `x_total` there; the family of counter `x_total` is `x`).
// Two families whose names meet here collide: a parser takes `jobs_count`
// for histogram `jobs`'s count and refuses the page over a second HELP line.
[[nodiscard]] std::vector<std::string> exposition_names(MetricType type, std::string_view name);

// A label name the exposition writes itself or Prometheus reserves: `le` on a
// histogram (its buckets' bound), `quantile` on any type (summaries' quantile,
// which Prometheus client libraries refuse as a label).
[[nodiscard]] bool is_reserved_label_name(MetricType type, std::string_view label) noexcept;

// `value` with every ill-formed UTF-8 sequence replaced by U+FFFD, one per
// maximal ill-formed subpart (as the Unicode standard recommends, and as
// nlohmann::json's error_handler_t::replace, which the alert webhooks use).
// Prometheus refuses a whole scrape over one label value that is not UTF-8.
[[nodiscard]] std::string sanitize_utf8(std::string_view value);

}  // namespace prodsafe::metrics
