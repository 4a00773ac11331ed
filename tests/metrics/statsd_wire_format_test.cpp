// StatsdClient: the lines it writes for each type, in either flavour.
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

TEST_F(StatsdTest, DogStatsdWireFormatOfEachType) {
  StatsdClient statsd(immediate(receiver_, guard_));
  statsd.counter("orders", 1, {{"side", "buy"}, {"symbol", "BTCUSDT"}});
  statsd.counter("fills");
  statsd.counter("cancels", -2.5);
  statsd.gauge("inflight", -3, {{"queue", "claims"}});
  statsd.timing("claim", 2500us, {{"effect", "order"}});
  statsd.histogram("batch_size", 17);
  statsd.distribution("slippage_bps", 0.25, {{"venue", "x"}});

  EXPECT_EQ(receiver_.lines(8), (std::vector<std::string>{
                                    "orders:1|c|#side:buy,symbol:BTCUSDT",
                                    "fills:1|c",
                                    "cancels:-2.5|c",
                                    "inflight:0|g|#queue:claims",
                                    "inflight:-3|g|#queue:claims",
                                    "claim:2.5|ms|#effect:order",
                                    "batch_size:17|h",
                                    "slippage_bps:0.25|d|#venue:x",
                                }));
  EXPECT_EQ(statsd.sent_metrics(), 7u);
  EXPECT_EQ(statsd.sent_packets(), 7u);
}

TEST_F(StatsdTest, PlainStatsdDropsTagsWithOneWarning) {
  prodsafe::testing::LogCapture logs;
  StatsdOptions options = immediate(receiver_, guard_);
  options.flavour = StatsdFlavour::kStatsd;
  StatsdClient statsd(options);
  statsd.counter("orders", 1, {{"side", "buy"}});
  statsd.gauge("inflight", 4, {{"queue", "claims"}});
  statsd.timing("claim", 12ms);
  statsd.histogram("batch_size", 17);
  statsd.distribution("slippage_bps", 0.25, {{"venue", "x"}});

  EXPECT_EQ(receiver_.lines(5), (std::vector<std::string>{
                                    "orders:1|c",
                                    "inflight:4|g",
                                    "claim:12|ms",
                                    "batch_size:17|h",
                                    "slippage_bps:0.25|h",
                                }));
  const auto lines = logs.lines();
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& line) {
                            return line.find("plain StatsD has no tags") != std::string::npos;
                          }),
            1)
      << logs.text();
}

TEST_F(StatsdTest, PlainStatsdSetsANegativeGaugeFromZeroInOneDatagram) {
  StatsdOptions options = immediate(receiver_, guard_);
  options.flavour = StatsdFlavour::kStatsd;
  StatsdClient statsd(options);
  statsd.gauge("temperature", -5);
  statsd.gauge("temperature", -0.0);  // "-0|g" would be a change of nothing

  const auto datagrams = receiver_.datagrams(3);
  ASSERT_EQ(datagrams.size(), 2u);
  EXPECT_EQ(datagrams[0], "temperature:0|g\ntemperature:-5|g");
  EXPECT_EQ(datagrams[1], "temperature:0|g");
  EXPECT_EQ(statsd.sent_metrics(), 2u);
}

TEST_F(StatsdTest, DogStatsdSetsANegativeGaugeFromZeroInOneDatagramToo) {
  // statsd_exporter and Telegraf read DogStatsD's "-3.5|g" as "decrease by
  // 3.5", like Etsy StatsD; the Datadog agent keeps a gauge's last value, so
  // "0|g" first is right for all of them.
  StatsdClient statsd(immediate(receiver_, guard_));
  statsd.gauge("temperature", -3.5, {{"room", "a"}});
  statsd.gauge("temperature", 2);

  const auto datagrams = receiver_.datagrams(3);
  ASSERT_EQ(datagrams.size(), 2u);
  EXPECT_EQ(datagrams[0], "temperature:0|g|#room:a\ntemperature:-3.5|g|#room:a");
  EXPECT_EQ(datagrams[1], "temperature:2|g");
  EXPECT_EQ(statsd.sent_metrics(), 2u);
}

TEST_F(StatsdTest, SampleRateSendsThatShareAndSaysSo) {
  StatsdOptions options = immediate(receiver_, guard_);
  options.flush_interval = kNever;
  StatsdClient statsd(options);
  for (int i = 0; i < 2000; ++i) statsd.counter("sampled", 1, {{"side", "buy"}}, 0.5);
  statsd.timing("always", 1ms, {}, 1.0);
  statsd.flush();

  const std::uint64_t sent = statsd.sent_metrics();
  EXPECT_GT(sent, 801u);  // 2000 draws at 0.5: 1000 +- 22 (sd)
  EXPECT_LT(sent, 1201u);
  const auto lines = receiver_.lines(sent);
  ASSERT_EQ(lines.size(), sent);
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    ASSERT_EQ(lines[i], "sampled:1|c|@0.5|#side:buy");
  }
  EXPECT_EQ(lines.back(), "always:1|ms");

  for (double bad : {0.0, -0.5, 1.5}) {
    EXPECT_NE(message_of<InvalidArgument>([&] {
                statsd.counter("x", 1, {}, bad);
              }).find("give a value in (0, 1]"),
              std::string::npos);
  }
}

TEST_F(StatsdTest, PrefixAndConstantTags) {
  StatsdOptions options = immediate(receiver_, guard_);
  options.prefix = "prodsafe";
  options.constant_tags = {{"env", "prod"}, {"region", "eu:west"}};
  StatsdClient statsd(options);
  statsd.counter("orders", 1, {{"side", "buy"}});
  statsd.gauge("inflight", 2);

  options.prefix = "prodsafe.";  // a trailing dot is not doubled
  options.constant_tags = {};
  StatsdClient dotted(options);
  dotted.counter("orders");

  EXPECT_EQ(receiver_.lines(3), (std::vector<std::string>{
                                    "prodsafe.orders:1|c|#side:buy,env:prod,region:eu_west",
                                    "prodsafe.inflight:2|g|#env:prod,region:eu_west",
                                    "prodsafe.orders:1|c",
                                }));
}

}  // namespace
}  // namespace prodsafe::metrics
