// Jitter bounds with a fixed seed, and a budget under 100 % failure.
#include <cmath>
#include <limits>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "prodsafe/core/backoff.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/retry/retry_budget.hpp"

namespace prodsafe::retry {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInfinity = std::numeric_limits<double>::infinity();

// What `make` throws as InvalidArgument, or a note that it threw nothing (or
// something else).
template <class Make>
std::string refusal(Make&& make) {
  try {
    make();
  } catch (const InvalidArgument& error) {
    return error.what();
  } catch (const std::exception& error) {
    return std::string("not InvalidArgument: ") + error.what();
  }
  return "accepted";
}

constexpr milliseconds kBase = 100ms;
constexpr milliseconds kCap = 5s;

milliseconds exponential(int retry) {
  return std::min<milliseconds>(kCap, kBase * (1LL << std::min(retry, 20)));
}

TEST(BackoffTest, NoJitterIsCappedExponential) {
  Backoff backoff(Jitter::kNone, kBase, kCap, 42);
  const long long expected[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
  for (int retry = 0; retry < 8; ++retry) EXPECT_EQ(backoff.next(retry).count(), expected[retry]);
  EXPECT_EQ(backoff.next(500).count(), 5000) << "no overflow for large retry counts";
}

TEST(BackoffTest, FullJitterStaysInZeroToExponential) {
  Backoff backoff(Jitter::kFull, kBase, kCap, 7);
  bool below_half = false;
  for (int i = 0; i < 1000; ++i) {
    const int retry = i % 10;
    const milliseconds delay = backoff.next(retry);
    EXPECT_GE(delay, 0ms);
    EXPECT_LE(delay, exponential(retry));
    below_half = below_half || delay < exponential(retry) / 2;
  }
  EXPECT_TRUE(below_half) << "full jitter uses the whole range";
}

TEST(BackoffTest, EqualJitterStaysInTheUpperHalf) {
  Backoff backoff(Jitter::kEqual, kBase, kCap, 7);
  for (int i = 0; i < 1000; ++i) {
    const int retry = i % 10;
    const milliseconds delay = backoff.next(retry);
    EXPECT_GE(delay, exponential(retry) / 2 - 1ms);
    EXPECT_LE(delay, exponential(retry));
  }
}

TEST(BackoffTest, DecorrelatedJitterStaysBetweenBaseAndCapAndThreePrevious) {
  Backoff backoff(Jitter::kDecorrelated, kBase, kCap, 7);
  milliseconds previous = kBase;
  for (int i = 0; i < 1000; ++i) {
    const milliseconds delay = backoff.next(i);
    EXPECT_GE(delay, kBase - 1ms);
    EXPECT_LE(delay, kCap);
    EXPECT_LE(delay, previous * 3 + 1ms);
    previous = delay;
  }
}

TEST(BackoffTest, SameSeedSameDelays) {
  Backoff a(Jitter::kFull, kBase, kCap, 99);
  Backoff b(Jitter::kFull, kBase, kCap, 99);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(a.next(i % 6), b.next(i % 6));
}

TEST(BackoffTest, InvalidDelaysAreRefused) {
  EXPECT_THROW(Backoff(Jitter::kFull, 0ms, kCap), InvalidArgument);
  EXPECT_THROW(Backoff(Jitter::kFull, kBase, 50ms), InvalidArgument);
}

TEST(BackoffTest, ACapTooLongToSleepIsRefusedAndTheLongestAllowedStaysPositive) {
  // milliseconds::max() used to come back from next() as a negative delay.
  EXPECT_THAT(refusal([] { Backoff(Jitter::kNone, kBase, milliseconds::max()); }),
              AllOf(HasSubstr("cap"), HasSubstr("24 h")));
  EXPECT_THAT(refusal([] { Backoff(Jitter::kNone, kMaxBackoffDelay + 1ms, kMaxBackoffDelay); }),
              HasSubstr("24 h"));
  for (Jitter jitter : {Jitter::kNone, Jitter::kFull, Jitter::kEqual, Jitter::kDecorrelated}) {
    Backoff longest(jitter, kBase, kMaxBackoffDelay, 7);
    for (int retry = 0; retry < 100; ++retry) {
      const milliseconds delay = longest.next(retry);
      EXPECT_GE(delay, 0ms) << retry;
      EXPECT_LE(delay, kMaxBackoffDelay) << retry;
    }
  }
}

TEST(RetryBudgetTest, HoldsRetriesToItsRatioUnderTotalFailure) {
  ManualClock clock;
  RetryBudget budget({.ratio = 0.2, .min_retries_per_second = 1, .ttl = 10s, .clock = &clock});
  // 100 requests a second for a minute, every one failing and wanting 3 retries.
  std::uint64_t retries = 0;
  for (int second = 0; second < 60; ++second) {
    for (int request = 0; request < 100; ++request) {
      budget.record_request();
      for (int retry = 0; retry < 3 && budget.try_withdraw(); ++retry) ++retries;
      clock.advance(10ms);
    }
  }
  const double allowed = 0.2 * 6000 + 1.0 * 60;  // the ratio plus the reserve, over the minute
  EXPECT_LE(static_cast<double>(retries), allowed * 1.05);
  EXPECT_GE(static_cast<double>(retries), 0.2 * 6000 * 0.9) << "the ratio is available";
  EXPECT_GT(budget.refused(), 0u);
  EXPECT_EQ(budget.requests(), 6000u);
}

TEST(RetryBudgetTest, LowTrafficCanStillRetry) {
  ManualClock clock;
  RetryBudget budget({.ratio = 0.1, .min_retries_per_second = 1, .ttl = 10s, .clock = &clock});
  budget.record_request();
  EXPECT_TRUE(budget.try_withdraw()) << "the per-second reserve covers a lone request";
}

TEST(RetryBudgetTest, OldTrafficStopsCounting) {
  ManualClock clock;
  RetryBudget budget({.ratio = 1.0, .min_retries_per_second = 0, .ttl = 2s, .clock = &clock});
  for (int i = 0; i < 10; ++i) budget.record_request();
  EXPECT_DOUBLE_EQ(budget.balance(), 10.0);
  clock.advance(3s);
  EXPECT_DOUBLE_EQ(budget.balance(), 0.0);
  EXPECT_FALSE(budget.try_withdraw());
}

TEST(RetryBudgetTest, ARefundGivesBackAWithdrawalNotMade) {
  ManualClock clock;
  RetryBudget budget({.ratio = 0, .min_retries_per_second = 0.2, .ttl = 10s, .clock = &clock});
  ASSERT_DOUBLE_EQ(budget.balance(), 2.0);
  ASSERT_TRUE(budget.try_withdraw());
  clock.advance(1500ms);  // the refund may land in a later second than the withdrawal
  budget.refund();
  EXPECT_DOUBLE_EQ(budget.balance(), 2.0);
  EXPECT_EQ(budget.retries(), 0u);
  budget.refund();
  EXPECT_DOUBLE_EQ(budget.balance(), 2.0) << "nothing withdrawn: nothing to give back";
  EXPECT_TRUE(budget.try_withdraw());
  EXPECT_TRUE(budget.try_withdraw());
  EXPECT_FALSE(budget.try_withdraw());
}

TEST(RetryBudgetTest, InvalidOptionsAreRefused) {
  EXPECT_THROW(RetryBudget({.ratio = -1}), InvalidArgument);
  EXPECT_THROW(RetryBudget({.ttl = 500ms}), InvalidArgument);
}

TEST(RetryBudgetTest, NaNAndInfiniteRatesAreRefusedNamingTheFieldAndRange) {
  // A NaN ratio used to pass validation and allow every retry.
  EXPECT_THAT(refusal([] { RetryBudget({.ratio = kNaN}); }),
              AllOf(HasSubstr("RetryBudgetOptions::ratio"), HasSubstr("finite number >= 0")));
  EXPECT_THAT(refusal([] { RetryBudget({.ratio = kInfinity}); }),
              HasSubstr("RetryBudgetOptions::ratio"));
  EXPECT_THAT(refusal([] { RetryBudget({.min_retries_per_second = kNaN}); }),
              AllOf(HasSubstr("RetryBudgetOptions::min_retries_per_second"),
                    HasSubstr("finite number >= 0")));
  EXPECT_THAT(refusal([] { RetryBudget({.min_retries_per_second = kInfinity}); }),
              HasSubstr("min_retries_per_second"));
}

TEST(RetryBudgetTest, ATtlOverAnHourIsRefused) {
  // One slot per second of the ttl: milliseconds::max() asked for 9e15 of them.
  EXPECT_THAT(refusal([] { RetryBudget({.ttl = milliseconds::max()}); }),
              AllOf(HasSubstr("RetryBudgetOptions::ttl"), HasSubstr("1 s and 1 h")));
  EXPECT_THAT(refusal([] { RetryBudget({.ttl = 1h + 1s}); }), HasSubstr("RetryBudgetOptions::ttl"));
  EXPECT_EQ(refusal([] { RetryBudget({.ttl = 1h}); }), "accepted");
}

}  // namespace
}  // namespace prodsafe::retry
