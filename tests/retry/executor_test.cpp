// retry::run with a ManualClock and a fixed seed: deterministic, no sleeps.
#include "prodsafe/retry/executor.hpp"

#include <stdexcept>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/retry/in_memory_window_store.hpp"

namespace prodsafe::retry {
namespace {

using namespace std::chrono_literals;

class ExecutorTest : public ::testing::Test {
 protected:
  ManualClock clock;
  RetryPolicy policy(int attempts = 5) {
    return RetryPolicy{.max_attempts = attempts,
                       .base_delay = 100ms,
                       .max_delay = 2s,
                       .jitter = Jitter::kNone,
                       .clock = &clock,
                       .seed = 1};
  }
};

TEST_F(ExecutorTest, RetriesUntilSuccessWithBackoff) {
  int calls = 0;
  const int result = run(policy(), [&](int attempt) {
    ++calls;
    EXPECT_EQ(attempt, calls);
    if (attempt < 3) throw StoreUnavailable("down");
    return 42;
  });
  EXPECT_EQ(result, 42);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(clock.slept(), 300ms) << "100 ms then 200 ms";
}

TEST_F(ExecutorTest, GivesUpAfterMaxAttemptsWithTheLastError) {
  int calls = 0;
  try {
    run(policy(4),
        [&]() -> int { throw std::runtime_error("attempt " + std::to_string(++calls)); });
    FAIL() << "no exception";
  } catch (const std::runtime_error& error) {
    EXPECT_STREQ(error.what(), "attempt 4");
  }
  EXPECT_EQ(calls, 4);
}

TEST_F(ExecutorTest, NonRetryableErrorsAreNotRetried) {
  int calls = 0;
  EXPECT_THROW(run(policy(),
                   [&]() -> int {
                     ++calls;
                     throw InvalidArgument("bad order");
                   }),
               InvalidArgument);
  EXPECT_EQ(calls, 1);
  RetryPolicy custom = policy();
  custom.retry_on = [](const std::exception& error) {
    return std::string(error.what()) != "fatal";
  };
  calls = 0;
  EXPECT_THROW(run(custom,
                   [&]() -> int {
                     ++calls;
                     throw std::runtime_error("fatal");
                   }),
               std::runtime_error);
  EXPECT_EQ(calls, 1);
}

TEST_F(ExecutorTest, VoidFunctionsWork) {
  int calls = 0;
  run(policy(), [&] {
    if (++calls < 2) throw Timeout("slow");
  });
  EXPECT_EQ(calls, 2);
}

TEST_F(ExecutorTest, RetryAfterHintLengthensTheDelay) {
  int calls = 0;
  run(policy(), [&]() -> int {
    if (++calls == 1) throw AlreadyInProgress("effect:X:1", 750ms, "busy");
    return 1;
  });
  EXPECT_EQ(clock.slept(), 750ms) << "max(backoff 100 ms, hint 750 ms)";
}

TEST_F(ExecutorTest, AnEndlessRetryAfterHintWaitsTheLongestDelayNotNone) {
  // milliseconds::max() overflowed when the clock took it as nanoseconds: the
  // retry came at a garbage time instead of after the longest wait.
  RetryPolicy hinted = policy();
  hinted.retry_after = [](const std::exception&) { return milliseconds::max(); };
  milliseconds announced{0};
  hinted.hooks.on_retry = [&](int, milliseconds delay, const std::string&) { announced = delay; };
  int calls = 0;
  run(hinted, [&]() -> int {
    if (++calls == 1) throw StoreUnavailable("down");
    return 1;
  });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(announced, kMaxBackoffDelay);
  EXPECT_EQ(clock.slept(), kMaxBackoffDelay);
}

TEST_F(ExecutorTest, MaxTotalTimeStopsRetrying) {
  RetryPolicy limited = policy(100);
  limited.max_total_time = 1s;
  int calls = 0;
  EXPECT_THROW(run(limited,
                   [&]() -> int {
                     ++calls;
                     throw StoreUnavailable("down");
                   }),
               StoreUnavailable);
  // 100 + 200 + 400 = 700 ms; the next 800 ms would end at 1.5 s.
  EXPECT_EQ(calls, 4);
  EXPECT_LE(clock.slept(), 1s);
}

TEST_F(ExecutorTest, AnEndlessMaxTotalTimeIsNoLimit) {
  // milliseconds::max() overflowed in the comparison and ended every loop
  // after its first attempt.
  RetryPolicy endless = policy(4);
  endless.max_total_time = milliseconds::max();
  int calls = 0;
  EXPECT_THROW(run(endless,
                   [&]() -> int {
                     ++calls;
                     throw StoreUnavailable("down");
                   }),
               StoreUnavailable);
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(clock.slept(), 700ms);
}

TEST_F(ExecutorTest, ResultPredicateRetriesAndReturnsTheLastResult) {
  int calls = 0;
  const std::string status = run_if(
      policy(3), [&] { return ++calls < 3 ? std::string("pending") : std::string("filled"); },
      [](const std::string& s) { return s == "pending"; });
  EXPECT_EQ(status, "filled");
  calls = 0;
  const std::string last = run_if(
      policy(2), [&] { return std::string("pending"); },
      [](const std::string& s) { return s == "pending"; });
  EXPECT_EQ(last, "pending");
}

TEST_F(ExecutorTest, AllowRetryGateStopsRetries) {
  RetryPolicy gated = policy();
  bool open = false;
  gated.allow_retry = [&] { return !open; };
  int calls = 0;
  EXPECT_THROW(run(gated,
                   [&]() -> int {
                     if (++calls == 2) open = true;  // the breaker opens after two failures
                     throw StoreUnavailable("down");
                   }),
               StoreUnavailable);
  EXPECT_EQ(calls, 2);
}

TEST_F(ExecutorTest, SharedBudgetLimitsRetries) {
  RetryPolicy budgeted = policy(10);
  budgeted.budget = std::make_shared<RetryBudget>(
      RetryBudgetOptions{.ratio = 0.0, .min_retries_per_second = 0.3, .ttl = 10s, .clock = &clock});
  int calls = 0;
  EXPECT_THROW(run(budgeted,
                   [&]() -> int {
                     ++calls;
                     throw StoreUnavailable("down");
                   }),
               StoreUnavailable);
  EXPECT_EQ(calls, 4) << "1 attempt + the 3 retries the reserve allows";
  EXPECT_EQ(budgeted.budget->refused(), 1u);
}

TEST_F(ExecutorTest, HooksSeeEveryAttemptRetryAndTheEnd) {
  RetryPolicy hooked = policy();
  std::vector<std::string> events;
  hooked.hooks.on_attempt = [&](int attempt) {
    events.push_back("attempt " + std::to_string(attempt));
  };
  hooked.hooks.on_retry = [&](int attempt, std::chrono::milliseconds delay,
                              const std::string& why) {
    events.push_back("retry " + std::to_string(attempt) + " " + std::to_string(delay.count()) +
                     " " + why);
  };
  hooked.hooks.on_finish = [&](int attempts, bool success, std::chrono::milliseconds elapsed) {
    events.push_back("finish " + std::to_string(attempts) + " " + (success ? "ok" : "failed") +
                     " " + std::to_string(elapsed.count()));
  };
  int calls = 0;
  run(hooked, [&]() -> int {
    if (++calls < 2) throw StoreUnavailable("down");
    return 1;
  });
  EXPECT_EQ(events, (std::vector<std::string>{"attempt 1", "retry 1 100 down", "attempt 2",
                                              "finish 2 ok 100"}));
}

TEST_F(ExecutorTest, ObserveFeedsTrackerHistogramSpikesAndAnomalies) {
  auto store = std::make_shared<InMemoryRetryWindowStore>(&clock);
  RetryWindowTracker tracker(store);
  RetryHistogram histogram;
  RetrySpikeDetector spikes({.min_count = 1, .clock = &clock});
  RetryAnomalyDetector anomalies({.excessive_attempts = 3});
  std::vector<Anomaly> found;
  RetryPolicy observed = policy();
  observed.hooks = observe({.histogram = &histogram,
                            .spikes = &spikes,
                            .tracker = &tracker,
                            .anomalies = &anomalies,
                            .on_anomaly = [&](const Anomaly& a) { found.push_back(a); },
                            .job_id = "job-7",
                            .job_type = "settlement"});
  int calls = 0;
  run(observed, [&]() -> int {
    if (++calls < 3) throw StoreUnavailable("down");
    return 1;
  });
  EXPECT_EQ(histogram.counts()[RetryHistogram::bucket_for(3)], 1u);
  EXPECT_EQ(spikes.current_count(), 2u);
  EXPECT_EQ(store->size(), 0u) << "the window was closed";
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].type, AnomalyType::kExcessiveAttempts);
  EXPECT_EQ(found[0].job_id, "job-7");
  EXPECT_EQ(found[0].value, 3);
}

// With alert_hooks, spikes and anomalies reach the hooks too (and through a
// RedisAlertStream hook, the fleet's alert history and the dashboard).
TEST_F(ExecutorTest, ObserveFiresSpikesAndAnomaliesIntoAlertHooks) {
  RetrySpikeDetector spikes({.window = 1s,
                             .baseline_windows = 1,
                             .multiplier = 2.0,
                             .min_count = 2,
                             .cooldown = 0ms,
                             .clock = &clock});
  clock.advance(2100ms);  // a quiet window of history before the current one: baseline 0
  RetryAnomalyDetector anomalies({.excessive_attempts = 3});
  auto hooks = std::make_shared<alerts::AlertHooks>();
  std::vector<std::pair<std::string, alerts::AlertContext>> fired;
  hooks->add_event_hook(
      [&](std::string_view type, std::string_view, const alerts::AlertContext& context) {
        fired.emplace_back(std::string(type), context);
      });
  RetryPolicy observed = policy();
  observed.hooks = observe({.spikes = &spikes,
                            .anomalies = &anomalies,
                            .alert_hooks = hooks,
                            .job_id = "job-9",
                            .job_type = "settlement",
                            .clock = &clock});
  int calls = 0;
  run(observed, [&]() -> int {
    if (++calls < 4) throw StoreUnavailable("down");
    return 1;
  });
  std::vector<std::string> types;
  for (const auto& [type, context] : fired) types.push_back(type);
  EXPECT_EQ(types, (std::vector<std::string>{std::string(alerts::kRetrySpike),
                                             std::string(alerts::kRetrySpike),
                                             std::string(alerts::kRetryAnomaly)}));
  const alerts::AlertContext& spike = fired.front().second;
  EXPECT_EQ(spike.job_type, "settlement");
  EXPECT_EQ(spike.extra.at("count"), "2");
  EXPECT_FALSE(spike.instance.empty());
  const alerts::AlertContext& anomaly = fired.back().second;
  EXPECT_EQ(anomaly.extra.at("anomaly"), "EXCESSIVE_ATTEMPTS");
  EXPECT_EQ(anomaly.extra.at("job_id"), "job-9");
  EXPECT_EQ(anomaly.extra.at("value"), "4");
}

TEST_F(ExecutorTest, InvalidPolicyIsRefused) {
  EXPECT_THROW(run(policy(0), [] { return 1; }), InvalidArgument);
  RetryPolicy bad = policy();
  bad.base_delay = 0ms;
  EXPECT_THROW(run(bad, [] { return 1; }), InvalidArgument);
}

TEST_F(ExecutorTest, AMaxDelayTooLongToSleepIsRefusedNamingTheFieldAndRange) {
  // milliseconds::max() came out of the backoff as a negative delay: retries
  // without sleeping.
  RetryPolicy endless = policy();
  endless.max_delay = milliseconds::max();
  std::string refusal = "accepted";
  int calls = 0;
  try {
    run(endless, [&] { return ++calls; });
  } catch (const InvalidArgument& error) {
    refusal = error.what();
  }
  EXPECT_THAT(refusal,
              ::testing::AllOf(::testing::HasSubstr("RetryPolicy::max_delay"),
                               ::testing::HasSubstr("base_delay"), ::testing::HasSubstr("24 h")));
  EXPECT_EQ(calls, 0) << "refused before the first attempt";
}

}  // namespace
}  // namespace prodsafe::retry
