// What a registry holds at one moment, as plain data: Registry::collect()
// returns it, and a serializer or exporter reads it (to_prometheus_text in
// text_serializer.hpp, StatsdExporter), so a new output format needs no change
// to the registry (as prometheus-cpp's MetricFamily between
// Collectable::Collect() and its serializers).
//
// Thread safety: plain values; a copy is independent of the registry.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "prodsafe/metrics/names.hpp"

namespace prodsafe::metrics {

struct HistogramSample {
  // The buckets' upper bounds, strictly increasing; +Inf is implied.
  std::vector<double> bounds;
  // Per-bucket (not cumulative) counts, one more than bounds: the last is
  // the +Inf bucket's.
  std::vector<std::uint64_t> counts;
  double sum = 0.0;
  // The sum of counts: read with them, so it never falls short of the
  // buckets while observations land meanwhile.
  std::uint64_t count = 0;
};

// One series: its label values and its value.
struct Sample {
  // In the order of the family's label_names.
  std::vector<std::string> label_values;
  // A counter's or a gauge's value.
  double value = 0.0;
  // A histogram's; empty for the other types.
  HistogramSample histogram{};
};

struct MetricFamily {
  std::string name;
  // As registered, with ill-formed UTF-8 replaced (not escaped).
  std::string help;
  MetricType type = MetricType::kCounter;
  std::vector<std::string> label_names;
  // Sorted by label values.
  std::vector<Sample> samples;
};

}  // namespace prodsafe::metrics
