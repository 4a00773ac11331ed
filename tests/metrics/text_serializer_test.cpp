// Collecting and serialising apart: Registry::collect() gives plain data, and
// to_prometheus_text writes any such data, a registry's or not.
#include "prodsafe/metrics/text_serializer.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/metrics/metric_family.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "promtool.hpp"

namespace prodsafe::metrics {
namespace {

TEST(TextSerializerTest, WritesFamiliesNoRegistryMade) {
  const std::vector<MetricFamily> families = {
      {"jobs_total", "Jobs run.\nBy \\ kind.", MetricType::kCounter, {"kind"}, {{{"a\"b"}, 3, {}}}},
      {"queue_depth", "Queued.", MetricType::kGauge, {}, {{{}, -1.5, {}}}},
      {"latency_seconds",
       "Latency.",
       MetricType::kHistogram,
       {"op"},
       {{{"get"}, 0, {{0.1, 1}, {2, 1, 1}, 3.25, 4}}}},
  };
  EXPECT_EQ(to_prometheus_text(families),
            "# HELP jobs_total Jobs run.\\nBy \\\\ kind.\n"
            "# TYPE jobs_total counter\n"
            "jobs_total{kind=\"a\\\"b\"} 3\n"
            "# HELP queue_depth Queued.\n"
            "# TYPE queue_depth gauge\n"
            "queue_depth -1.5\n"
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{op=\"get\",le=\"0.1\"} 2\n"
            "latency_seconds_bucket{op=\"get\",le=\"1\"} 3\n"
            "latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
            "latency_seconds_sum{op=\"get\"} 3.25\n"
            "latency_seconds_count{op=\"get\"} 4\n");
}

TEST(TextSerializerTest, CollectGivesEveryFamilySortedWithItsSeries) {
  MetricsCardinalityGuard guard;
  Registry registry(&guard);
  registry.counter("zz_total", "z", {"k"}).labels({"b"}).inc(2);
  registry.counter("zz_total", "z", {"k"}).labels({"a"}).inc();
  auto& latency = registry.histogram("aa_seconds", "a", {}, {1.0});
  latency.labels({}).observe(0.5);
  latency.labels({}).observe(7);

  const std::vector<MetricFamily> families = registry.collect();
  std::vector<std::string> names;
  for (const MetricFamily& family : families) names.push_back(family.name);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  const auto find = [&](const std::string& name) {
    return *std::find_if(families.begin(), families.end(),
                         [&](const MetricFamily& family) { return family.name == name; });
  };
  const MetricFamily counter = find("zz_total");
  EXPECT_EQ(counter.type, MetricType::kCounter);
  ASSERT_EQ(counter.samples.size(), 2U);
  EXPECT_EQ(counter.samples[0].label_values, std::vector<std::string>{"a"});
  EXPECT_EQ(counter.samples[1].value, 2.0);
  const MetricFamily histogram = find("aa_seconds");
  ASSERT_EQ(histogram.samples.size(), 1U);
  EXPECT_EQ(histogram.samples[0].histogram.counts, (std::vector<std::uint64_t>{1, 1}));
  EXPECT_EQ(histogram.samples[0].histogram.count, 2U);
  EXPECT_EQ(histogram.samples[0].histogram.sum, 7.5);
  // The self-report families are collected too.
  EXPECT_EQ(find("prodsafe_metrics_overflow_total").type, MetricType::kCounter);

  EXPECT_EQ(to_prometheus_text(families), registry.serialize());
  EXPECT_EQ(promtool::promtool_check(registry.serialize()).exit_code, 0);
}

}  // namespace
}  // namespace prodsafe::metrics
