// The registry pushed over OTLP/HTTP JSON to a real HTTP server; the body is
// decoded and checked against the OTLP metrics JSON encoding.
#include "prodsafe/tracing/otlp_metrics.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "alerts/test_http_server.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/cardinality_guard.hpp"
#include "prodsafe/metrics/registry.hpp"

namespace prodsafe::tracing {
namespace {

using alerts::testing::TestHttpServer;
using nlohmann::json;
using namespace std::chrono_literals;

const json* metric_named(const json& body, std::string_view name) {
  for (const json& metric : body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]) {
    if (metric["name"] == name) return &metric;
  }
  return nullptr;
}

TEST(OtlpMetricsTest, PushesCountersGaugesAndHistogramsWithTheOverflowMarked) {
  TestHttpServer collector;
  metrics::GuardOptions guard_options;
  guard_options.max_label_sets = 1;
  metrics::MetricsCardinalityGuard guard(guard_options);
  metrics::Registry registry(&guard);
  auto& orders = registry.counter("orders_total", "Orders placed.", {"side"});
  orders.labels({"buy"}).inc(3);
  orders.labels({"sell"}).inc();  // past max_label_sets: the overflow series
  registry.gauge("queue_depth", "Jobs waiting.").labels({}).set(7);
  auto& latency = registry.histogram("latency_seconds", "Latency.", {}, {0.1, 1.0});
  latency.labels({}).observe(0.05);
  latency.labels({}).observe(0.5);
  latency.labels({}).observe(5);

  metrics::Registry own;  // the dispatcher's counts stay out of the pushed registry
  OtlpMetricsOptions options;
  options.endpoint = collector.url("/v1/metrics");
  options.service_name = "order-worker";
  options.interval = std::chrono::hours(1);
  options.delivery.metrics = &own;
  OtlpMetricsExporter exporter(registry, options);
  ASSERT_TRUE(exporter.push());
  ASSERT_TRUE(exporter.flush(5s));
  const auto requests = collector.requests();
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_EQ(requests[0].path, "/v1/metrics");
  const json body = json::parse(requests[0].body);
  EXPECT_EQ(body["resourceMetrics"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "order-worker");

  const json* counter = metric_named(body, "orders_total");
  ASSERT_NE(counter, nullptr);
  EXPECT_EQ((*counter)["description"], "Orders placed.");
  EXPECT_EQ((*counter)["sum"]["isMonotonic"], true);
  EXPECT_EQ((*counter)["sum"]["aggregationTemporality"], 2);
  double buy = -1;
  bool overflow = false;
  for (const json& point : (*counter)["sum"]["dataPoints"]) {
    ASSERT_TRUE(point["startTimeUnixNano"].is_string());
    ASSERT_TRUE(point["timeUnixNano"].is_string());
    const json& attribute = point["attributes"][0];
    if (attribute["key"] == "side" && attribute["value"]["stringValue"] == "buy") {
      buy = point["asDouble"];
    }
    if (attribute["key"] == "otel.metric.overflow") {
      overflow = attribute["value"]["boolValue"] == true && point["asDouble"] == 1.0 &&
                 point["attributes"].size() == 1;
    }
  }
  EXPECT_EQ(buy, 3.0);
  EXPECT_TRUE(overflow) << counter->dump();

  const json* gauge = metric_named(body, "queue_depth");
  ASSERT_NE(gauge, nullptr);
  EXPECT_EQ((*gauge)["gauge"]["dataPoints"][0]["asDouble"], 7.0);
  EXPECT_TRUE((*gauge)["gauge"]["dataPoints"][0]["attributes"].empty());

  const json* histogram = metric_named(body, "latency_seconds");
  ASSERT_NE(histogram, nullptr);
  const json& point = (*histogram)["histogram"]["dataPoints"][0];
  EXPECT_EQ((*histogram)["histogram"]["aggregationTemporality"], 2);
  EXPECT_EQ(point["count"], "3");
  EXPECT_DOUBLE_EQ(point["sum"].get<double>(), 5.55);
  EXPECT_EQ(point["explicitBounds"], json::array({0.1, 1.0}));
  EXPECT_EQ(point["bucketCounts"], json::array({"1", "1", "1"}));
}

TEST(OtlpMetricsTest, PushesOnItsOwnEveryInterval) {
  TestHttpServer collector;
  metrics::Registry registry;
  registry.counter("ticks_total", "Ticks.").labels({}).inc();
  metrics::Registry own;
  OtlpMetricsOptions options;
  options.endpoint = collector.url("/v1/metrics");
  options.interval = 20ms;
  options.delivery.metrics = &own;
  OtlpMetricsExporter exporter(registry, options);
  EXPECT_TRUE(collector.wait_for_requests(2, 5s));
}

TEST(OtlpMetricsTest, BadOptionsAreRefusedByName) {
  metrics::Registry registry;
  OtlpMetricsOptions options;
  options.endpoint = "udp://collector";
  EXPECT_THROW(OtlpMetricsExporter(registry, options), InvalidArgument);
  options = {};
  options.interval = 1ms;
  try {
    OtlpMetricsExporter exporter(registry, options);
    ADD_FAILURE() << "accepted a 1 ms interval";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("interval"), std::string::npos);
  }
}

}  // namespace
}  // namespace prodsafe::tracing
