// StatsdExporter: a registry pushed through a StatsdClient.
#include "prodsafe/metrics/statsd.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "statsd_receiver.hpp"
#include "support/log_capture.hpp"

namespace prodsafe::metrics {
namespace {

using namespace std::chrono_literals;
using namespace statsd_testing;

TEST_F(StatsdExporterTest, CountersAsDeltasGaugesAsValuesHistogramsAsCountAndSum) {
  StatsdClient statsd(buffered());
  StatsdExporter exporter(registry_, statsd, {.interval = 0ms});
  auto& orders = registry_.counter("orders_total", "Orders.", {"side"});
  auto& inflight = registry_.gauge("inflight", "In flight.");
  auto& latency = registry_.histogram("latency_seconds", "Latency.", {"op"}, {0.1, 1});

  orders.labels({"buy"}).inc(3);
  inflight.labels({}).set(7);
  latency.labels({"claim"}).observe(0.5);
  latency.labels({"claim"}).observe(1.5);
  exporter.export_now();
  // Buckets as the increases of their cumulative counts, tagged le like
  // Prometheus' (a bucket that did not move is not sent).
  EXPECT_EQ(receiver_.lines(6), (std::vector<std::string>{
                                    "inflight:7|g",
                                    "latency_seconds.count:2|c|#op:claim",
                                    "latency_seconds.sum:2|c|#op:claim",
                                    "latency_seconds.bucket:1|c|#op:claim,le:1",
                                    "latency_seconds.bucket:2|c|#op:claim,le:+Inf",
                                    "orders_total:3|c|#side:buy",
                                }));

  orders.labels({"buy"}).inc(2);
  latency.labels({"claim"}).observe(0.25);
  exporter.export_now();
  EXPECT_EQ(receiver_.lines(6), (std::vector<std::string>{
                                    "inflight:7|g",
                                    "latency_seconds.count:1|c|#op:claim",
                                    "latency_seconds.sum:0.25|c|#op:claim",
                                    "latency_seconds.bucket:1|c|#op:claim,le:1",
                                    "latency_seconds.bucket:1|c|#op:claim,le:+Inf",
                                    "orders_total:2|c|#side:buy",
                                }));

  inflight.labels({}).set(-1);
  exporter.export_now();  // counters and histograms did not move: nothing for them
  EXPECT_EQ(receiver_.receive(kDeadline), "inflight:0|g\ninflight:-1|g");
  EXPECT_EQ(receiver_.receive(kQuiet), std::nullopt);
}

TEST_F(StatsdExporterTest, PlainStatsdGetsNoBucketsForItHasNoTagsToCarryTheBound) {
  StatsdOptions options = buffered();
  options.flavour = StatsdFlavour::kStatsd;
  StatsdClient statsd(options);
  StatsdExporter exporter(registry_, statsd, {.interval = 0ms});
  registry_.histogram("latency_seconds", "Latency.", {}, {0.1, 1}).labels({}).observe(0.5);
  exporter.export_now();
  EXPECT_EQ(receiver_.lines(2), (std::vector<std::string>{
                                    "latency_seconds.count:1|c",
                                    "latency_seconds.sum:0.5|c",
                                }));
}

TEST_F(StatsdExporterTest, AColonInAMetricNameIsReplacedAndThePushGoesOn) {
  // A recording-rule style name (legal in Prometheus) aborted the whole push
  // and lost the change of every series visited before it.
  StatsdClient statsd(buffered());
  StatsdExporter exporter(registry_, statsd, {.interval = 0ms});
  registry_.counter("a_total", "A.").labels({}).inc(1);
  registry_.counter("job:orders:rate_total", "Orders.").labels({}).inc(2);
  registry_.counter("z_total", "Z.").labels({}).inc(3);
  exporter.export_now();
  auto lines = receiver_.lines(3);
  std::erase_if(lines, [](const std::string& line) { return line.starts_with("prodsafe_"); });
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "a_total:1|c",
                       "job_orders_rate_total:2|c",
                       "z_total:3|c",
                   }));
  EXPECT_EQ(statsd.sanitised(), 1u);
  registry_.counter("job:orders:rate_total", "Orders.").labels({}).inc(1);
  exporter.export_now();
  EXPECT_EQ(receiver_.receive(kDeadline), "job_orders_rate_total:1|c") << "only the change";
}

TEST_F(StatsdExporterTest, LabelValuesBecomeTagsWithoutTheClientsGuard) {
  MetricsCardinalityGuard strict({.strict_mode = true});
  StatsdOptions options = buffered();
  options.guard = &strict;  // would throw on order_id if the exporter asked it
  StatsdClient statsd(options);
  StatsdExporter exporter(registry_, statsd, {.interval = 0ms});
  registry_.counter("escaped_total", "Escapes.", {"venue"}).labels({"a\"b\\c\nd"}).inc();
  // The registry's warning-mode guard only logs order_id (issue 13): the
  // series keeps its value, and the exporter must not take the client's
  // strict guard's word over it.
  registry_.counter("refused_total", "Refused.", {"order_id"}).labels({"A-1"}).inc();

  EXPECT_NO_THROW(exporter.export_now());
  // One push fits one datagram; the registry's own prodsafe_metrics_* lines
  // (its guard logged order_id) are not this test's business.
  const auto datagram = receiver_.receive(kDeadline);
  ASSERT_TRUE(datagram);
  std::vector<std::string> lines;
  for (const std::string& line : split(*datagram)) {
    if (!line.starts_with("prodsafe_metrics_")) lines.push_back(line);
  }
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "escaped_total:1|c|#venue:a\"b\\c_d",
                       "refused_total:1|c|#order_id:A-1",
                   }));
}

TEST_F(StatsdExporterTest, PushesInTheBackgroundAndOnceMoreWhenDestroyed) {
  StatsdClient statsd(buffered());
  auto& jobs = registry_.counter("jobs_total", "Jobs.");
  jobs.labels({}).inc();
  {
    StatsdExporter exporter(registry_, statsd, {.interval = 20ms});
    EXPECT_EQ(receiver_.receive(kDeadline), "jobs_total:1|c");
    jobs.labels({}).inc(4);
  }
  // The background push may or may not have sent the 4 before the destructor:
  // either way exactly 4 more arrive, in one line.
  EXPECT_EQ(receiver_.receive(kDeadline), "jobs_total:4|c");
  EXPECT_EQ(receiver_.receive(kQuiet), std::nullopt);
}

}  // namespace
}  // namespace prodsafe::metrics
