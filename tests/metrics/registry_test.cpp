// The registry and its Prometheus text exposition, checked by promtool.
#include "prodsafe/metrics/registry.hpp"

#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/names.hpp"
#include "promtool.hpp"
#include "support/log_capture.hpp"

namespace prodsafe::metrics {
namespace {

using promtool::Checked;
using promtool::promtool_check;

TEST(RegistryTest, ExpositionPassesPromtool) {
  MetricsCardinalityGuard guard;
  Registry registry(&guard);
  auto& orders =
      registry.counter("prodsafe_orders_total", "Orders placed.\nSecond line with a \\ backslash.",
                       {"symbol", "side"});
  orders.labels({"BTCUSDT", "buy"}).inc();
  orders.labels({"BTCUSDT", "buy"}).inc(2);
  orders.labels({"ETH\"USD\\T\nX", "sell"}).inc();
  registry
      .gauge("prodsafe_breaker_state", "Breaker state (0 closed, 1 open, 2 half-open).",
             {"job_type"})
      .labels({"exchange"})
      .set(1);
  auto& latency = registry.histogram("prodsafe_claim_duration_seconds", "Claim latency.",
                                     {"effect_type"}, {0.001, 0.01, 0.1});
  for (double v : {0.0005, 0.001, 0.002, 0.05, 3.0}) latency.labels({"ORDER_PLACEMENT"}).observe(v);
  registry.counter("prodsafe_unlabelled_total", "No labels.").labels({}).inc();

  const std::string text = registry.serialize();
  const Checked checked = promtool_check(text);
  EXPECT_EQ(checked.exit_code, 0) << checked.output << "\n" << text;
  EXPECT_NE(text.find("prodsafe_orders_total{symbol=\"BTCUSDT\",side=\"buy\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("symbol=\"ETH\\\"USD\\\\T\\nX\""), std::string::npos) << text;
  EXPECT_NE(
      text.find(
          "# HELP prodsafe_orders_total Orders placed.\\nSecond line with a \\\\ backslash.\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("prodsafe_claim_duration_seconds_bucket{effect_type=\"ORDER_PLACEMENT\",le="
                      "\"0.001\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("prodsafe_claim_duration_seconds_bucket{effect_type=\"ORDER_PLACEMENT\",le="
                      "\"+Inf\"} 5\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("prodsafe_claim_duration_seconds_count{effect_type=\"ORDER_PLACEMENT\"} 5\n"),
            std::string::npos);
  EXPECT_NE(text.find("prodsafe_unlabelled_total 1\n"), std::string::npos) << text;
}

TEST(RegistryTest, PromtoolCatchesBrokenExposition) {
  // The check above can fail: promtool refuses a malformed page.
  EXPECT_NE(promtool_check("# TYPE x counter\nx{a=\"unterminated} 1\n").exit_code, 0);
}

TEST(RegistryTest, InvalidUtf8LabelValuesAreReplacedCountedAndThePageStaysValid) {
  MetricsCardinalityGuard guard;
  Registry registry(&guard);
  auto& orders = registry.counter("prodsafe_orders_total", "Orders.", {"symbol"});
  orders.labels({"BTCUSDT"}).inc();
  orders.labels({std::string_view("ETH\xff\xc3USD")}).inc();  // stray byte, truncated sequence
  orders.labels({std::string_view("ETH\xff\xc3USD")}).inc();
  orders.labels({"caf\xc3\xa9"}).inc();  // valid UTF-8 (e-acute) is kept as it is
  EXPECT_EQ(orders.invalid_utf8(), 2U);
  const std::string text = registry.serialize();
  const Checked checked = promtool_check(text);
  EXPECT_EQ(checked.exit_code, 0) << checked.output << "\n" << text;
  EXPECT_NE(text.find("prodsafe_orders_total{symbol=\"ETH\xef\xbf\xbd\xef\xbf\xbdUSD\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("prodsafe_orders_total{symbol=\"caf\xc3\xa9\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("prodsafe_metrics_invalid_utf8_total{metric=\"prodsafe_orders_total\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(sanitize_utf8("a\xe2\x82"), "a\xef\xbf\xbd");
  EXPECT_EQ(sanitize_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd")
      << "a UTF-16 surrogate is not UTF-8";
  EXPECT_EQ(sanitize_utf8("\xf0\x9f\x98\x80 ok"), "\xf0\x9f\x98\x80 ok");
}

TEST(RegistryTest, LabelSetsPastTheLimitGoToTheOverflowSeries) {
  MetricsCardinalityGuard guard({.max_label_sets = 3});
  Registry registry(&guard);
  auto& requests = registry.counter("prodsafe_requests_total", "Requests.", {"route"});
  for (int i = 0; i < 10; ++i) requests.labels({fmt::format("r{}", i)}).inc();
  EXPECT_EQ(requests.size(), 4u) << "3 real series and the overflow series";
  EXPECT_EQ(requests.overflowed(), 7u);
  EXPECT_EQ(requests.labels({std::string(kOverflowValue)}).value(), 7.0);
  EXPECT_EQ(promtool_check(registry.serialize()).exit_code, 0);
}

TEST(RegistryTest, OverflowAndErrorCountersCountLabelSetsNotCalls) {
  MetricsCardinalityGuard guard({.max_label_sets = 2});
  Registry registry(&guard);
  auto& requests = registry.counter("prodsafe_requests_total", "Requests.", {"route"});
  requests.labels({"a"}).inc();
  requests.labels({"b"}).inc();
  for (int i = 0; i < 5; ++i) requests.labels({"c"}).inc();
  for (int i = 0; i < 3; ++i) requests.labels({"d"}).inc();
  EXPECT_EQ(requests.overflowed(), 2U) << "two label sets were refused, however often";
  EXPECT_EQ(guard.errors(), 2U);
  EXPECT_EQ(requests.labels({std::string(kOverflowValue)}).value(), 8.0)
      << "the overflow series still counts every increment";
  const std::string text = registry.serialize();
  EXPECT_NE(text.find("prodsafe_metrics_overflow_total{metric=\"prodsafe_requests_total\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("prodsafe_metrics_label_violations_total{severity=\"error\"} 2\n"),
            std::string::npos)
      << text;

  MetricsCardinalityGuard strict({.strict_mode = true, .max_label_sets = 1});
  EXPECT_NO_THROW(strict.validate_labels("prodsafe_x_total", {{"route", "a"}}));
  for (int i = 0; i < 3; ++i) {
    EXPECT_THROW(strict.validate_labels("prodsafe_x_total", {{"route", "b"}}), CardinalityViolation)
        << "a refused set is refused every time";
  }
  EXPECT_EQ(strict.errors(), 1U);
}

TEST(RegistryTest, MetricsPastMaxMetricsAreLimitedToo) {
  MetricsCardinalityGuard guard({.max_label_sets = 5, .max_metrics = 1});
  Registry registry(&guard);
  auto& first = registry.counter("prodsafe_first_total", "x", {"v"});
  auto& second = registry.counter("prodsafe_second_total", "x", {"v"});
  for (int i = 0; i < 50; ++i) {
    first.labels({std::to_string(i)}).inc();
    second.labels({std::to_string(i)}).inc();
  }
  EXPECT_EQ(first.size(), 6U) << "5 label sets and the overflow series";
  EXPECT_EQ(second.size(), 1U) << "an untracked metric has only its overflow series";
  EXPECT_EQ(second.overflowed(), 50U);
  EXPECT_EQ(second.labels({std::string(kOverflowValue)}).value(), 50.0);
  const std::string text = registry.serialize();
  EXPECT_NE(text.find("prodsafe_metrics_overflow_total{metric=\"prodsafe_second_total\"} 50\n"),
            std::string::npos)
      << "the registry's own report is not limited by the guard\n"
      << text;
  EXPECT_EQ(promtool_check(text).exit_code, 0);
}

TEST(RegistryTest, ForbiddenLabelNamesAreRefusedInStrictModeAndLoggedOtherwise) {
  MetricsCardinalityGuard strict({.strict_mode = true});
  Registry strict_registry(&strict);
  EXPECT_THROW(strict_registry.counter("prodsafe_fills_total", "Fills.", {"order_id"}),
               CardinalityViolation);
  MetricsCardinalityGuard lenient;
  Registry registry(&lenient);
  EXPECT_NO_THROW(registry.counter("prodsafe_fills_total", "Fills.", {"order_id"}));
}

TEST(RegistryTest, AForbiddenLabelNameInWarningModeKeepsItsSeriesWithinTheLimit) {
  // The name was logged when the family was made; its values still get their
  // own series, up to max_label_sets, like any other family's.
  MetricsCardinalityGuard guard({.max_label_sets = 3});
  Registry registry(&guard);
  auto& fills = registry.counter("prodsafe_fills_total", "Fills.", {"strategy_id"});
  fills.labels({"mm-1"}).inc();
  fills.labels({"mm-2"}).inc(2);
  fills.labels({"mm-1"}).inc();
  EXPECT_EQ(fills.overflowed(), 0U);
  EXPECT_EQ(fills.labels({"mm-1"}).value(), 2.0);
  EXPECT_EQ(fills.labels({"mm-2"}).value(), 2.0);
  for (int i = 0; i < 10; ++i) fills.labels({fmt::format("s{}", i)}).inc();
  EXPECT_EQ(fills.size(), 4U) << "3 real series and the overflow series: memory stays bounded";
  EXPECT_EQ(guard.errors(), 3U + 10U - 1U)
      << "each label set counted once: the 3 admitted and the 10 - 1 refused";
  EXPECT_FALSE(guard.validate_labels("prodsafe_fills_total", {{"strategy_id", "mm-1"}}).is_valid)
      << "the name stays an error for a direct caller, however often it asks";
  EXPECT_EQ(guard.errors(), 12U) << "a label set seen before is not counted again";
  EXPECT_EQ(promtool_check(registry.serialize()).exit_code, 0);
}

TEST(RegistryTest, NonFiniteObservationsAreIgnoredCountedAndLoggedOnce) {
  prodsafe::testing::LogCapture logs;
  MetricsCardinalityGuard guard;
  Registry registry(&guard);
  auto& latency = registry.histogram("prodsafe_latency_seconds", "x", {}, {0.1, 1});
  auto& series = latency.labels({});
  series.observe(0.05);
  series.observe(std::numeric_limits<double>::quiet_NaN());
  series.observe(std::numeric_limits<double>::infinity());
  series.observe(-std::numeric_limits<double>::infinity());
  series.observe(2);
  EXPECT_EQ(series.count(), 2U);
  EXPECT_DOUBLE_EQ(series.sum(), 2.05) << "_sum stays a number";
  EXPECT_EQ(series.counts(), (std::vector<std::uint64_t>{1, 0, 1})) << "no bucket got them";
  EXPECT_EQ(series.rejected(), 3U);
  std::string text = registry.serialize();
  EXPECT_NE(text.find("prodsafe_latency_seconds_sum 2.05\n"), std::string::npos) << text;
  EXPECT_NE(
      text.find("prodsafe_metrics_rejected_values_total{metric=\"prodsafe_latency_seconds\"} 3\n"),
      std::string::npos)
      << text;
  EXPECT_EQ(promtool_check(text).exit_code, 0);
  series.observe(std::numeric_limits<double>::quiet_NaN());
  text = registry.serialize();
  EXPECT_NE(
      text.find("prodsafe_metrics_rejected_values_total{metric=\"prodsafe_latency_seconds\"} 4\n"),
      std::string::npos)
      << text;
  std::size_t warnings = 0;
  for (const std::string& line : logs.lines()) {
    if (line.find("prodsafe_latency_seconds") != std::string::npos) ++warnings;
  }
  EXPECT_EQ(warnings, 1U) << logs.text();
}

TEST(RegistryTest, MisuseIsRefused) {
  Registry registry;
  EXPECT_THROW(registry.counter("bad-name", "x"), InvalidArgument);
  registry.counter("prodsafe_x_total", "x", {"a"});
  EXPECT_THROW(registry.gauge("prodsafe_x_total", "x", {"a"}), InvalidArgument);
  EXPECT_THROW(registry.counter("prodsafe_x_total", "x", {"b"}), InvalidArgument);
  EXPECT_THROW(registry.counter("prodsafe_x_total", "x", {"a"}).labels({"1", "2"}),
               InvalidArgument);
  EXPECT_THROW(registry.histogram("prodsafe_h", "h", {}, {1, 1}), InvalidArgument);
}

TEST(RegistryTest, CountersOnlyGoUpAndKeepFractions) {
  Counter counter;
  counter.inc();
  counter.inc(0.25);
  counter.inc(2);
  counter.inc(0.25);
  counter.inc(-5);
  EXPECT_DOUBLE_EQ(counter.value(), 3.5);
}

TEST(RegistryTest, InfiniteNaNAndNegativeCounterIncrementsAreIgnoredAndCounted) {
  MetricsCardinalityGuard guard;
  Registry registry(&guard);
  auto& orders = registry.counter("prodsafe_orders_total", "Orders.").labels({});
  orders.inc(2);
  orders.inc(std::numeric_limits<double>::infinity());
  orders.inc(-std::numeric_limits<double>::infinity());
  orders.inc(std::numeric_limits<double>::quiet_NaN());
  orders.inc(-1);
  orders.inc(0);  // nothing to add, nothing wrong
  orders.inc(0.5);
  EXPECT_DOUBLE_EQ(orders.value(), 2.5) << "the counter stays finite";
  EXPECT_EQ(orders.rejected(), 4U);
  const std::string text = registry.serialize();
  EXPECT_NE(text.find("prodsafe_orders_total 2.5\n"), std::string::npos) << text;
  EXPECT_NE(
      text.find("prodsafe_metrics_rejected_values_total{metric=\"prodsafe_orders_total\"} 4\n"),
      std::string::npos)
      << text;
  EXPECT_EQ(promtool_check(text).exit_code, 0);
}

TEST(RegistryTest, ConcurrentIncrementsAllCount) {
  Registry registry;
  auto& counter = registry.counter("prodsafe_concurrent_total", "x").labels({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) counter.inc();
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counter.value(), 40000.0);
}

TEST(RegistryTest, ReportsItsOwnOverflowAndGuardViolations) {
  MetricsCardinalityGuard guard({.max_label_sets = 2});
  Registry registry(&guard);
  auto& family = registry.counter("prodsafe_fills_total", "Fills.", {"venue"});
  for (const char* venue : {"a", "b", "c", "d"}) family.labels({venue}).inc();
  ASSERT_EQ(family.overflowed(), 2U);
  std::string text = registry.serialize();
  EXPECT_NE(text.find("prodsafe_metrics_overflow_total{metric=\"prodsafe_fills_total\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find(fmt::format("prodsafe_metrics_label_violations_total{{severity=\"error\"}} {}\n",
                            guard.errors())),
      std::string::npos)
      << text;
  EXPECT_GE(guard.errors(), 2U);
  // Rendering again does not count the same overflow twice.
  family.labels({"e"}).inc();
  text = registry.serialize();
  EXPECT_NE(text.find("prodsafe_metrics_overflow_total{metric=\"prodsafe_fills_total\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(promtool_check(text).exit_code, 0);
}

TEST(RegistryTest, ConcurrentLabelSetsPastTheLimitAreEachCountedOnce) {
  MetricsCardinalityGuard guard({.max_label_sets = 5});
  Registry registry(&guard);
  auto& requests = registry.counter("prodsafe_requests_total", "Requests.", {"route"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) requests.labels({fmt::format("r{}", i)}).inc();
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 20; ++i) (void)registry.serialize();
  });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(requests.size(), 6U);
  EXPECT_EQ(requests.overflowed(), 5U) << "5 label sets refused, each by 4 threads";
  EXPECT_EQ(guard.errors(), 5U);
  double total = 0;
  requests.for_each(
      [&](const std::vector<std::string>&, const Counter& series) { total += series.value(); });
  EXPECT_EQ(total, 40.0) << "no increment lost";
}

TEST(RegistryTest, VisitCallsEachFamilyOnceInNameOrder) {
  Registry registry;
  registry.gauge("prodsafe_b", "b");
  registry.counter("prodsafe_a_total", "a");
  registry.histogram("prodsafe_c_seconds", "c");
  std::vector<std::string> seen;
  registry.visit({
      .counter = [&](const Family<Counter>& family) { seen.push_back("c:" + family.name()); },
      .gauge = [&](const Family<Gauge>& family) { seen.push_back("g:" + family.name()); },
      .histogram = [&](const Family<Histogram>& family) { seen.push_back("h:" + family.name()); },
  });
  EXPECT_EQ(
      seen,
      (std::vector<std::string>{
          "c:prodsafe_a_total", "g:prodsafe_b", "h:prodsafe_c_seconds",
          "c:prodsafe_metrics_invalid_utf8_total", "c:prodsafe_metrics_label_violations_total",
          "c:prodsafe_metrics_overflow_total", "c:prodsafe_metrics_rejected_values_total"}));
}

}  // namespace
}  // namespace prodsafe::metrics
