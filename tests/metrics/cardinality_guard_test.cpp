#include "prodsafe/metrics/cardinality_guard.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/names.hpp"
#include "support/log_capture.hpp"

namespace prodsafe::metrics {
namespace {

using namespace std::chrono_literals;

bool has(const ValidationResult& result, ViolationKind kind, std::string_view label = {}) {
  for (const Violation& v : result.violations) {
    if (v.kind == kind && (label.empty() || v.label == label)) return true;
  }
  return false;
}

TEST(NamesTest, PrometheusDataModel) {
  for (const char* good : {"order_latency", "a", "_x", "ns:sub_total", "x1"}) {
    EXPECT_TRUE(is_valid_metric_name(good)) << good;
  }
  for (const char* bad : {"", "1x", "order-latency", "with space", "é"}) {
    EXPECT_FALSE(is_valid_metric_name(bad)) << bad;
  }
  for (const char* good : {"symbol", "_side", "status2"})
    EXPECT_TRUE(is_valid_label_name(good)) << good;
  for (const char* bad : {"", "__name__", "a:b", "2x", "a-b"})
    EXPECT_FALSE(is_valid_label_name(bad)) << bad;
}

TEST(GuardTest, TheSeedsExampleIsValid) {
  MetricsCardinalityGuard guard;
  const auto [is_valid, violations] = guard.validate_labels(
      "order_latency", {{"symbol", "BTCUSDT"}, {"side", "buy"}, {"status", "filled"}});
  EXPECT_TRUE(is_valid);
  EXPECT_TRUE(violations.empty());
}

TEST(GuardTest, ForbiddenNamesAndPatterns) {
  MetricsCardinalityGuard guard({.allowed_labels = {"strategy_id"}});
  for (const char* name :
       {"job_id", "order_id", "trade_id", "user_id", "transaction_id", "request_id", "session_id",
        "correlation_id", "trace_id", "span_id", "client_order_id", "account_id", "email", "ip",
        "venue_id", "order_uuid", "device_guid", "created_timestamp", "timestamp_ms"}) {
    const auto result = guard.validate_labels("orders_total", {{name, "x"}});
    EXPECT_FALSE(result.is_valid) << name;
    EXPECT_TRUE(has(result, ViolationKind::kForbiddenLabel, name)) << name;
  }
  EXPECT_TRUE(guard.validate_labels("orders_total", {{"strategy_id", "mm-1"}}).is_valid)
      << "allowlisted";
  EXPECT_TRUE(guard.validate_labels("orders_total", {{"identity", "x"}, {"side", "buy"}}).is_valid);
}

TEST(GuardTest, InvalidNamesAreErrors) {
  MetricsCardinalityGuard guard;
  EXPECT_TRUE(
      has(guard.validate_labels("order-latency", {{"side", "buy"}}), ViolationKind::kInvalidName));
  EXPECT_TRUE(has(guard.validate_labels("ok_metric", {{"__reserved", "x"}}),
                  ViolationKind::kInvalidName, "__reserved"));
}

TEST(GuardTest, UnboundedValuesAreWarnings) {
  MetricsCardinalityGuard guard;
  for (const char* value : {"3f2504e0-4f89-11d3-9a0c-0305e82c3301", "deadbeefdeadbeef",
                            "1764240000123", "2026-11-27T10:15:00Z", "at 2026-11-27 10:15"}) {
    const auto result = guard.validate_labels("orders_total", {{"status", value}});
    EXPECT_TRUE(result.is_valid) << value;
    EXPECT_TRUE(has(result, ViolationKind::kUnboundedValue, "status")) << value;
  }
  for (const char* value : {"filled", "BTCUSDT", "v1.2.3", "123456789", "abcdef"}) {
    EXPECT_FALSE(looks_unbounded(value)) << value;
  }
  EXPECT_GE(guard.warnings(), 5u);
}

TEST(GuardTest, LabelSetsPerMetricAreLimitedAndMemoryIsBounded) {
  MetricsCardinalityGuard guard({.max_label_sets = 100});
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(
        guard.validate_labels("requests_total", {{"route", fmt::format("r{}", i)}}).is_valid);
  }
  const auto over = guard.validate_labels("requests_total", {{"route", "r100"}});
  EXPECT_FALSE(over.is_valid);
  EXPECT_TRUE(has(over, ViolationKind::kCardinalityLimit));
  EXPECT_TRUE(guard.validate_labels("requests_total", {{"route", "r7"}}).is_valid) << "seen before";
  for (int i = 0; i < 10000; ++i)
    guard.validate_labels("requests_total", {{"route", fmt::format("x{}", i)}});
  EXPECT_EQ(guard.label_sets("requests_total"), 100u);
  EXPECT_TRUE(guard.validate_labels("other_total", {{"route", "r100"}}).is_valid)
      << "limits are per metric";
}

TEST(GuardTest, StrictModeThrowsWarningModeLogsRateLimited) {
  MetricsCardinalityGuard strict({.strict_mode = true});
  try {
    strict.validate_labels("orders_total", {{"order_id", "42"}});
    FAIL() << "no exception";
  } catch (const CardinalityViolation& error) {
    EXPECT_EQ(error.metric(), "orders_total");
    EXPECT_NE(std::string(error.what()).find("order_id"), std::string::npos);
  }
  EXPECT_NO_THROW(strict.validate_labels("orders_total", {{"status", "2026-11-27T10:15:00Z"}}))
      << "warnings never throw";

  prodsafe::testing::LogCapture logs;
  ManualClock clock;
  MetricsCardinalityGuard lenient({.clock = &clock});
  for (int i = 0; i < 50; ++i)
    lenient.validate_labels("orders_total", {{"order_id", std::to_string(i)}});
  EXPECT_EQ(lenient.errors(), 50u);
  EXPECT_EQ(logs.lines().size(), 1u) << "one log line a minute per metric";
  clock.advance(61s);
  lenient.validate_labels("orders_total", {{"order_id", "x"}});
  EXPECT_EQ(logs.lines().size(), 2u);
}

TEST(GuardTest, GlobalGuardAndTheSeedsFunction) {
  EXPECT_TRUE(validate_metric_labels("order_latency", {{"symbol", "BTCUSDT"}, {"side", "buy"}}));
  EXPECT_FALSE(validate_metric_labels("order_latency", {{"user_id", "7"}}));
}

}  // namespace
}  // namespace prodsafe::metrics
