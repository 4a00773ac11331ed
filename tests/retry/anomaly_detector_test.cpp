// Each anomaly at and around its threshold.
#include "prodsafe/retry/anomaly_detector.hpp"

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::retry {
namespace {

using namespace std::chrono_literals;

RetryWindow window(int attempts, std::chrono::milliseconds duration = 1s,
                   std::string type = "settlement") {
  RetryWindow w;
  w.job_id = "job";
  w.job_type = std::move(type);
  w.attempts = attempts;
  w.duration = duration;
  w.success = true;
  return w;
}

bool has(const std::vector<Anomaly>& found, AnomalyType type) {
  for (const Anomaly& anomaly : found) {
    if (anomaly.type == type) return true;
  }
  return false;
}

TEST(AnomalyTest, ExcessiveAttemptsAtAndAroundTheThreshold) {
  RetryAnomalyDetector detector({.excessive_attempts = 10});
  EXPECT_FALSE(has(detector.record_window(window(9)), AnomalyType::kExcessiveAttempts));
  const auto at = detector.record_window(window(10));
  ASSERT_TRUE(has(at, AnomalyType::kExcessiveAttempts));
  EXPECT_EQ(at[0].value, 10);
  EXPECT_EQ(at[0].threshold, 10);
  EXPECT_EQ(at[0].job_type, "settlement");
  EXPECT_TRUE(has(detector.record_window(window(11)), AnomalyType::kExcessiveAttempts));
}

TEST(AnomalyTest, LongWindowAtAndAroundTheThreshold) {
  RetryAnomalyDetector detector({.long_window = 5min});
  EXPECT_FALSE(has(detector.record_window(window(2, 5min - 1ms)), AnomalyType::kLongRetryWindow));
  EXPECT_TRUE(has(detector.record_window(window(2, 5min)), AnomalyType::kLongRetryWindow));
  EXPECT_TRUE(has(detector.record_window(window(2, 5min + 1ms)), AnomalyType::kLongRetryWindow));
}

TEST(AnomalyTest, HighRetryRateFiresOnCrossingAndRearms) {
  RetryAnomalyDetector detector(
      {.high_retry_rate = 0.5, .rate_window = 10, .rate_min_windows = 10});
  int fired = 0;
  auto feed = [&](int attempts) {
    fired += has(detector.record_window(window(attempts)), AnomalyType::kHighRetryRate);
  };
  for (int i = 0; i < 10; ++i) feed(1);  // rate 0
  for (int i = 0; i < 4; ++i) feed(2);   // rate 0.4: below
  EXPECT_EQ(fired, 0);
  feed(2);  // 5 of the last 10 retried: exactly the threshold
  EXPECT_EQ(fired, 1);
  feed(2);
  feed(2);  // still above: no repeat
  EXPECT_EQ(fired, 1);
  for (int i = 0; i < 10; ++i) feed(1);  // back to 0: re-armed
  for (int i = 0; i < 5; ++i) feed(3);
  EXPECT_EQ(fired, 2);
}

TEST(AnomalyTest, RateNeedsEnoughWindowsAndIsPerJobType) {
  RetryAnomalyDetector detector({.high_retry_rate = 0.5, .rate_window = 10, .rate_min_windows = 5});
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(has(detector.record_window(window(2)), AnomalyType::kHighRetryRate)) << i;
  }
  const auto fifth = detector.record_window(window(2));
  ASSERT_TRUE(has(fifth, AnomalyType::kHighRetryRate));
  EXPECT_DOUBLE_EQ(fifth[0].value, 1.0);
  EXPECT_FALSE(has(detector.record_window(window(2, 1s, "other")), AnomalyType::kHighRetryRate));
}

TEST(AnomalyTest, JobTypesAreBounded) {
  RetryAnomalyDetector detector({.max_job_types = 2});
  detector.record_window(window(1, 1s, "a"));
  detector.record_window(window(1, 1s, "b"));
  detector.record_window(window(1, 1s, "c"));
  EXPECT_EQ(detector.untracked_windows(), 1u);
  EXPECT_TRUE(has(detector.record_window(window(50, 1s, "d")), AnomalyType::kExcessiveAttempts))
      << "per-window rules still apply to untracked types";
}

TEST(AnomalyTest, InvalidThresholdsAreRefused) {
  EXPECT_THROW(RetryAnomalyDetector({.high_retry_rate = 0}), InvalidArgument);
  EXPECT_THROW(RetryAnomalyDetector({.high_retry_rate = 1.5}), InvalidArgument);
  EXPECT_THROW(RetryAnomalyDetector({.rate_window = 5, .rate_min_windows = 6}), InvalidArgument);
  EXPECT_THROW(RetryAnomalyDetector({.excessive_attempts = 1}), InvalidArgument);
}

TEST(AnomalyTest, Names) {
  EXPECT_EQ(to_string(AnomalyType::kHighRetryRate), "HIGH_RETRY_RATE");
  EXPECT_EQ(to_string(AnomalyType::kLongRetryWindow), "LONG_RETRY_WINDOW");
  EXPECT_EQ(to_string(AnomalyType::kExcessiveAttempts), "EXCESSIVE_ATTEMPTS");
}

}  // namespace
}  // namespace prodsafe::retry
