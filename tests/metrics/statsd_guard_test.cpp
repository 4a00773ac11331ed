// StatsdClient: names and tags sanitised, and the cardinality guard on tag sets.
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

TEST_F(StatsdTest, TagValuesAreSanitisedAndCounted) {
  StatsdClient statsd(immediate(receiver_, guard_));
  statsd.counter("orders", 1, {{"venue", "a:b|c@d#e,f\ng"}, {"empty", ""}, {"path", "/x y"}});
  EXPECT_EQ(receiver_.lines(1),
            std::vector<std::string>{"orders:1|c|#venue:a_b_c_d_e_f_g,path:/x y"});
  EXPECT_EQ(statsd.sanitised(), 1u);
}

TEST_F(StatsdTest, ReservedCharactersInNamesAreReplacedCountedAndLogged) {
  // ':' is legal in a Prometheus name; refusing it lost the metric (and,
  // from the exporter, the whole push).
  prodsafe::testing::LogCapture logs;
  StatsdClient statsd(immediate(receiver_, guard_));
  statsd.counter("orders:placed");
  statsd.gauge("a\nb|c@d#e", 1);
  statsd.counter("orders", 1, {{"si|de", "buy"}});
  statsd.counter("clean");
  EXPECT_EQ(receiver_.lines(4), (std::vector<std::string>{
                                    "orders_placed:1|c",
                                    "a_b_c_d_e:1|g",
                                    "orders:1|c|#si_de:buy",
                                    "clean:1|c",
                                }));
  EXPECT_EQ(statsd.sanitised(), 3u);
  EXPECT_EQ(statsd.dropped(), 0u);
  EXPECT_NE(logs.text().find("orders:placed"), std::string::npos) << logs.text();
  EXPECT_NE(logs.text().find("orders_placed"), std::string::npos) << logs.text();

  // Nothing to send, and configuration given once, are still refused.
  EXPECT_NE(message_of<InvalidArgument>([&] { statsd.histogram("", 1); }).find("must not be empty"),
            std::string::npos);
  StatsdOptions options = immediate(receiver_, guard_);
  options.prefix = "prod#safe";
  EXPECT_NE(message_of<InvalidArgument>([&] {
              StatsdClient refused(options);
            }).find("prefix 'prod#safe' contains '#'"),
            std::string::npos);
  EXPECT_EQ(receiver_.receive(kQuiet), std::nullopt);
}

TEST_F(StatsdTest, ForbiddenTagNameIsSentAsTheOverflowSeries) {
  StatsdClient statsd(immediate(receiver_, guard_));
  statsd.counter("orders", 1, {{"order_id", "A-1"}, {"side", "buy"}});
  statsd.counter("orders", 1, {{"order_id", "A-2"}, {"side", "sell"}});
  statsd.counter("orders", 1, {{"side", "buy"}});

  EXPECT_EQ(receiver_.lines(3), (std::vector<std::string>{
                                    "orders:1|c|#order_id:__overflow__,side:__overflow__",
                                    "orders:1|c|#order_id:__overflow__,side:__overflow__",
                                    "orders:1|c|#side:buy",
                                }));
  EXPECT_EQ(statsd.overflowed(), 2u);
  EXPECT_EQ(guard_.errors(), 2u);
}

TEST_F(StatsdTest, TheGuardsLimitSendsFurtherTagSetsToTheOverflowSeries) {
  MetricsCardinalityGuard guard({.max_label_sets = 2});
  StatsdOptions options = immediate(receiver_, guard);
  options.prefix = "prodsafe";
  StatsdClient statsd(options);
  for (const char* symbol : {"BTC", "ETH", "BTC", "SOL"}) {
    statsd.counter("orders", 1, {{"symbol", symbol}});
  }
  EXPECT_EQ(receiver_.lines(4), (std::vector<std::string>{
                                    "prodsafe.orders:1|c|#symbol:BTC",
                                    "prodsafe.orders:1|c|#symbol:ETH",
                                    "prodsafe.orders:1|c|#symbol:BTC",
                                    "prodsafe.orders:1|c|#symbol:__overflow__",
                                }));
  EXPECT_EQ(guard.label_sets("prodsafe_orders"), 2u);
}

TEST_F(StatsdTest, AStrictGuardThrowsCardinalityViolationAndSendsNothing) {
  MetricsCardinalityGuard strict({.strict_mode = true});
  StatsdClient statsd(immediate(receiver_, strict));
  try {
    statsd.counter("orders", 1, {{"order_id", "A-1"}});
    FAIL() << "a forbidden tag was accepted";
  } catch (const CardinalityViolation& violation) {
    EXPECT_EQ(violation.metric(), "orders");
    EXPECT_NE(std::string(violation.what()).find("order_id"), std::string::npos);
  }
  EXPECT_EQ(receiver_.receive(kQuiet), std::nullopt);
  EXPECT_EQ(statsd.sent_metrics(), 0u);
}

}  // namespace
}  // namespace prodsafe::metrics
