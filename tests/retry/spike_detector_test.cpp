// The spike detector on synthetic streams, with a ManualClock: no sleeps.
#include "prodsafe/retry/spike_detector.hpp"

#include <limits>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::retry {
namespace {

using namespace std::chrono_literals;

class SpikeTest : public ::testing::Test {
 protected:
  ManualClock clock;
  RetrySpikeDetector detector{SpikeOptions{.window = 60s,
                                           .slots_per_window = 10,
                                           .baseline_windows = 10,
                                           .multiplier = 3.0,
                                           .min_count = 10,
                                           .cooldown = 5min,
                                           .clock = &clock}};

  // `per_window` retries spread evenly over `windows` windows; returns the
  // alerts and when (in windows from the start of this stream) the first came.
  int stream(int per_window, int windows, double* first_alert_at = nullptr) {
    int alerts = 0;
    const auto step = 60s / per_window;
    for (int i = 0; i < per_window * windows; ++i) {
      clock.advance(step);
      if (detector.record_retry()) {
        if (alerts == 0 && first_alert_at != nullptr) {
          *first_alert_at = static_cast<double>(i + 1) / per_window;
        }
        ++alerts;
      }
    }
    return alerts;
  }
};

TEST_F(SpikeTest, NoAlertOnSteadyLoad) {
  EXPECT_EQ(stream(20, 30), 0);
  ASSERT_TRUE(detector.baseline());
  EXPECT_NEAR(*detector.baseline(), 20.0, 2.0);
}

TEST_F(SpikeTest, AlertWithinOneWindowOfAFiveFoldSurge) {
  stream(20, 15);
  double at = -1;
  EXPECT_EQ(stream(100, 1, &at), 1);
  EXPECT_GT(at, 0);
  EXPECT_LE(at, 1.0) << "the alert must come within one window of the surge";
}

TEST_F(SpikeTest, AlertCarriesRateBaselineAndMultiplier) {
  stream(20, 15);
  std::optional<SpikeAlert> alert;
  for (int i = 0; i < 100 && !alert; ++i) {
    clock.advance(600ms);
    alert = detector.record_retry();
  }
  ASSERT_TRUE(alert);
  EXPECT_GE(alert->count, 60u);  // 3 x the baseline of about 20
  EXPECT_NEAR(alert->baseline, 20.0, 2.0);
  EXPECT_GE(alert->multiplier, 3.0);
  EXPECT_EQ(alert->threshold_multiplier, 3.0);
  EXPECT_DOUBLE_EQ(alert->rate_per_second, static_cast<double>(alert->count) / 60.0);
  EXPECT_EQ(alert->window, 60s);
  EXPECT_NE(alert->message.find("retry spike"), std::string::npos);
}

TEST(SpikeMessageTest, AZeroBaselineIsSaidInWords) {
  ManualClock clock;
  RetrySpikeDetector quiet({.window = 10s, .baseline_windows = 2, .min_count = 5, .clock = &clock});
  quiet.record_retry(0);
  clock.advance(30s);  // three windows of history, no retries in them
  std::optional<SpikeAlert> alert;
  for (int i = 0; i < 10 && !alert; ++i) alert = quiet.record_retry();
  ASSERT_TRUE(alert);
  EXPECT_EQ(alert->baseline, 0.0);
  EXPECT_NE(alert->message.find("after a baseline of no retries"), std::string::npos)
      << alert->message;
  EXPECT_EQ(alert->message.find("inf"), std::string::npos) << alert->message;
}

TEST_F(SpikeTest, NoSecondAlertInsideTheCooldown) {
  stream(20, 15);
  EXPECT_EQ(stream(100, 4), 1) << "4 minutes of surge, 5 minute cooldown";
  EXPECT_EQ(detector.alerts(), 1u);
}

TEST_F(SpikeTest, AlertsAgainAfterTheCooldown) {
  stream(20, 15);
  EXPECT_EQ(stream(100, 1), 1);
  stream(20, 15);  // back to normal past the cooldown
  EXPECT_EQ(stream(100, 1), 1);
}

TEST_F(SpikeTest, BelowMinCountNeverAlerts) {
  stream(1, 15);
  EXPECT_EQ(stream(5, 3), 0) << "5x the baseline but under min_count";
}

TEST_F(SpikeTest, NoBaselineNoAlert) {
  // A burst in the first window has nothing to compare with.
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(detector.record_retry());
}

TEST_F(SpikeTest, CountsSlideAndMemoryIsFixed) {
  for (int i = 0; i < 1000000; ++i) detector.record_retry();
  EXPECT_EQ(detector.current_count(), 1000000u);
  clock.advance(30s);
  EXPECT_EQ(detector.current_count(), 1000000u);
  clock.advance(31s);
  EXPECT_EQ(detector.current_count(), 0u) << "the burst has slid out of the window";
  clock.advance(24h);
  EXPECT_EQ(detector.current_count(), 0u);
}

TEST(SpikeOptionsTest, InvalidOptionsAreRefused) {
  EXPECT_THROW(RetrySpikeDetector(SpikeOptions{.window = 0s}), InvalidArgument);
  EXPECT_THROW(RetrySpikeDetector(SpikeOptions{.multiplier = 0.5}), InvalidArgument);
  EXPECT_THROW(RetrySpikeDetector(SpikeOptions{.slots_per_window = 0}), InvalidArgument);
}

// What constructing a detector with `options` throws as InvalidArgument.
std::string refusal(const SpikeOptions& options) {
  try {
    RetrySpikeDetector detector(options);
  } catch (const InvalidArgument& error) {
    return error.what();
  } catch (const std::exception& error) {
    return std::string("not InvalidArgument: ") + error.what();
  }
  return "accepted";
}

TEST(SpikeOptionsTest, NaNOrInfiniteMultiplierIsRefusedNamingTheRange) {
  using ::testing::AllOf;
  using ::testing::HasSubstr;
  EXPECT_THAT(refusal({.multiplier = std::numeric_limits<double>::quiet_NaN()}),
              AllOf(HasSubstr("SpikeOptions::multiplier"), HasSubstr("finite number >= 1")));
  EXPECT_THAT(refusal({.multiplier = std::numeric_limits<double>::infinity()}),
              HasSubstr("SpikeOptions::multiplier"));
}

TEST(SpikeOptionsTest, WindowOverADayAndNegativeCooldownAreRefused) {
  using ::testing::AllOf;
  using ::testing::HasSubstr;
  // milliseconds::max() overflowed when turned into nanoseconds.
  EXPECT_THAT(refusal({.window = std::chrono::milliseconds::max()}),
              AllOf(HasSubstr("SpikeOptions::window"), HasSubstr("24 h")));
  EXPECT_THAT(refusal({.window = 24h + 1ms}), HasSubstr("SpikeOptions::window"));
  EXPECT_EQ(refusal({.window = 24h}), "accepted");
  EXPECT_THAT(refusal({.cooldown = -1ms}),
              AllOf(HasSubstr("SpikeOptions::cooldown"), HasSubstr("not be negative")));
}

TEST(SpikeOptionsTest, AnEndlessCooldownAlertsOnceAndNeverAgain) {
  ManualClock clock;
  RetrySpikeDetector detector(SpikeOptions{.window = 60s,
                                           .multiplier = 3.0,
                                           .cooldown = std::chrono::milliseconds::max(),
                                           .clock = &clock});
  auto stream = [&](int per_window, int windows) {
    int alerts = 0;
    for (int i = 0; i < per_window * windows; ++i) {
      clock.advance(60s / per_window);
      if (detector.record_retry()) ++alerts;
    }
    return alerts;
  };
  stream(20, 15);
  EXPECT_EQ(stream(100, 1), 1);
  stream(20, 15);
  EXPECT_EQ(stream(100, 1), 0) << "the cooldown never ends";
  EXPECT_EQ(detector.alerts(), 1u);
}

}  // namespace
}  // namespace prodsafe::retry
