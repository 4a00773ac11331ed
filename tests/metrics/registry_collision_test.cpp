// Registrations whose exposition would make the whole page unparseable (or
// ambiguous once a counter is read with its OpenMetrics "_total" name) are
// refused with InvalidArgument, in either registration order; the page of
// what was accepted still passes promtool.
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "promtool.hpp"

namespace prodsafe::metrics {
namespace {

// The InvalidArgument message of `call`, or "" (and a failure) if it did not throw one.
template <class Call>
std::string refusal(Call&& call) {
  try {
    call();
  } catch (const InvalidArgument& error) {
    return error.what();
  }
  ADD_FAILURE() << "the registration was accepted";
  return {};
}

void expect_page_parses(const Registry& registry) {
  const std::string page = registry.serialize();
  const auto checked = promtool::promtool_check(page);
  EXPECT_TRUE(checked.parsed()) << checked.output << "\n" << page;
}

class RegistryCollisionTest : public ::testing::Test {
 protected:
  MetricsCardinalityGuard guard_;  // warning mode: only collisions may refuse
  Registry registry_{&guard_};
};

TEST_F(RegistryCollisionTest, AHistogramLabelNamedLeIsRefused) {
  const std::string message = refusal([&] {
    registry_.histogram("jobs_seconds", "Jobs.", {"le"}, {0.1, 1});
  });
  EXPECT_NE(message.find("jobs_seconds"), std::string::npos) << message;
  EXPECT_NE(message.find("'le'"), std::string::npos) << message;
  EXPECT_NE(message.find("rename"), std::string::npos) << message;
  // A counter or gauge may use it: nothing else writes an le label there.
  registry_.gauge("queue_depth", "Depth.", {"le"}).labels({"fast"}).set(1);
  registry_.histogram("jobs_seconds", "Jobs.", {"speed"}, {0.1, 1}).labels({"fast"}).observe(0.2);
  expect_page_parses(registry_);
}

TEST_F(RegistryCollisionTest, ReservedAndInvalidLabelNamesAreRefusedEvenInWarningMode) {
  EXPECT_NE(refusal([&] { registry_.gauge("a", "A.", {"quantile"}); }).find("'quantile'"),
            std::string::npos);
  EXPECT_NE(refusal([&] { registry_.counter("b_total", "B.", {"__reserved"}); }).find("__reserved"),
            std::string::npos);
  EXPECT_NE(refusal([&] { registry_.counter("c_total", "C.", {"bad-name"}); }).find("bad-name"),
            std::string::npos);
  EXPECT_NE(refusal([&] {
              registry_.counter("d_total", "D.", {"venue", "venue"});
            }).find("'venue' twice"),
            std::string::npos);
  expect_page_parses(registry_);
}

TEST_F(RegistryCollisionTest, AHistogramAndACounterNamedLikeItsCountClashInEitherOrder) {
  registry_.histogram("jobs", "Jobs.", {}, {1}).labels({}).observe(0.5);
  const std::string message = refusal([&] { registry_.counter("jobs_count", "Jobs counted."); });
  EXPECT_NE(message.find("jobs_count"), std::string::npos) << message;
  EXPECT_NE(message.find("histogram jobs"), std::string::npos) << message;
  EXPECT_NE(message.find("another name"), std::string::npos) << message;
  EXPECT_NE(refusal([&] { registry_.gauge("jobs_sum", "x"); }), "");
  EXPECT_NE(refusal([&] { registry_.gauge("jobs_bucket", "x"); }), "");
  expect_page_parses(registry_);

  Registry reversed(&guard_);
  reversed.counter("jobs_count", "Jobs counted.").labels({}).inc();
  EXPECT_NE(
      refusal([&] { reversed.histogram("jobs", "Jobs.", {}, {1}); }).find("counter jobs_count"),
      std::string::npos);
  Registry bucket_first(&guard_);
  bucket_first.gauge("jobs_bucket", "x").labels({}).set(1);
  EXPECT_NE(
      refusal([&] { bucket_first.histogram("jobs", "Jobs.", {}, {1}); }).find("gauge jobs_bucket"),
      std::string::npos);
  expect_page_parses(reversed);
  expect_page_parses(bucket_first);
}

TEST_F(RegistryCollisionTest, ACounterAndTheSameNameWithTotalClashInEitherOrder) {
  registry_.counter("orders", "Orders.");
  EXPECT_NE(refusal([&] { registry_.counter("orders_total", "Orders."); }).find("counter orders"),
            std::string::npos);
  EXPECT_NE(refusal([&] { registry_.gauge("orders_total", "Orders."); }), "");
  registry_.counter("fills_total", "Fills.");
  EXPECT_NE(refusal([&] { registry_.counter("fills", "Fills."); }).find("counter fills_total"),
            std::string::npos);
  EXPECT_NE(refusal([&] { registry_.gauge("fills", "Fills."); }), "");
  EXPECT_NE(refusal([&] { registry_.histogram("fills", "Fills."); }), "");
  // Two gauges are two gauges: neither gets a "_total" in any format.
  registry_.gauge("depth", "Depth.");
  registry_.gauge("depth_total", "Depth total.");
  expect_page_parses(registry_);
}

TEST_F(RegistryCollisionTest, TheSameNameAgainMustMatchExactlyAndThenReturnsTheSameFamily) {
  auto& latency = registry_.histogram("latency_seconds", "Latency.", {"op"}, {0.1, 1});
  EXPECT_EQ(&registry_.histogram("latency_seconds", "Latency.", {"op"}, {0.1, 1}), &latency);
  EXPECT_NE(refusal([&] {
              registry_.histogram("latency_seconds", "Latency.", {"op"}, {0.2, 1});
            }).find("other buckets"),
            std::string::npos);
  EXPECT_NE(refusal([&] {
              registry_.histogram("latency_seconds", "Other.", {"op"}, {0.1, 1});
            }).find("other help"),
            std::string::npos);
  EXPECT_NE(refusal([&] {
              registry_.histogram("latency_seconds", "Latency.", {"kind"}, {0.1, 1});
            }).find("other label names"),
            std::string::npos);
  EXPECT_NE(refusal([&] {
              registry_.gauge("latency_seconds", "Latency.", {"op"});
            }).find("already registered as a histogram"),
            std::string::npos);
  expect_page_parses(registry_);
}

TEST_F(RegistryCollisionTest, BucketBoundsMustBeFinite) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_NE(refusal([&] {
              registry_.histogram("a_seconds", "A.", {}, {1, inf});
            }).find("+Inf"),
            std::string::npos);
  EXPECT_NE(refusal([&] {
              registry_.histogram("b_seconds", "B.", {},
                                  {std::numeric_limits<double>::quiet_NaN()});
            }),
            "");
  EXPECT_NE(refusal([&] { registry_.histogram("c_seconds", "C.", {}, {-inf, 0}); }), "");
  expect_page_parses(registry_);
}

}  // namespace
}  // namespace prodsafe::metrics
