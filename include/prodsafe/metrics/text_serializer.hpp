// The Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): what
// MetricsServer serves at /metrics.
//
//   std::string page = to_prometheus_text(registry.collect());
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "prodsafe/metrics/metric_family.hpp"

namespace prodsafe::metrics {

// Each family's HELP and TYPE lines, then its samples (a histogram's
// cumulative _bucket lines, _sum and _count), in the order given.
[[nodiscard]] std::string to_prometheus_text(const std::vector<MetricFamily>& families);

// Prometheus escaping: label values escape \, " and newline; HELP text
// escapes \ and newline.
[[nodiscard]] std::string escape_label_value(std::string_view value);
[[nodiscard]] std::string escape_help(std::string_view help);

}  // namespace prodsafe::metrics
