// A hook or policy callback that throws never decides an attempt's outcome:
// each path by which the retry loop calls one is here, with the throw
// contained, logged and counted in prodsafe_retry_hook_errors_total.
//
// The paths: on_attempt (every attempt); on_retry after a failed attempt and
// after a result that asked for a retry; on_finish after a success, a void
// success, a non-retryable error, exhausted retries and a result that was
// still not good enough; retry_if_result; retry_on; retry_after; allow_retry;
// and the parts observe() runs inside those hooks (tracker, on_spike,
// on_anomaly).
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/retry/executor.hpp"
#include "prodsafe/retry/in_memory_window_store.hpp"
#include "support/log_capture.hpp"

namespace prodsafe::retry {
namespace {

using namespace std::chrono_literals;

// Fails every operation while `down` is set, as a Redis store would.
class FlakyWindowStore final : public RetryWindowStore {
 public:
  explicit FlakyWindowStore(Clock* clock) : inner_(clock) {}
  bool down = false;
  RetryWindow start(std::string_view job_id, std::string_view job_type,
                    std::chrono::milliseconds ttl) override {
    check();
    return inner_.start(job_id, job_type, ttl);
  }
  std::optional<RetryWindow> increment(std::string_view job_id) override {
    check();
    return inner_.increment(job_id);
  }
  std::optional<RetryWindow> close(std::string_view job_id, bool success) override {
    check();
    return inner_.close(job_id, success);
  }

 private:
  void check() const {
    if (down) throw StoreUnavailable("injected: window store down");
  }
  InMemoryRetryWindowStore inner_;
};

class ExecutorHooksTest : public ::testing::Test {
 protected:
  ManualClock clock;
  metrics::Registry registry;
  testing::LogCapture log;
  int calls = 0;

  RetryPolicy policy(int attempts = 5) {
    return RetryPolicy{.max_attempts = attempts,
                       .base_delay = 100ms,
                       .max_delay = 2s,
                       .jitter = Jitter::kNone,
                       .clock = &clock,
                       .seed = 1,
                       .job_type = "orders",
                       .metrics = &registry};
  }
  // The value of one series, or -1 when the registry has none.
  double series(const std::string& name) const {
    const std::string text = registry.serialize();
    const std::string needle = "\n" + name + " ";
    const std::size_t at = text.find(needle);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + needle.size()));
  }
  double hook_errors(const std::string& hook) const {
    return series("prodsafe_retry_hook_errors_total{job_type=\"orders\",hook=\"" + hook + "\"}");
  }
  double gave_up(const std::string& reason) const {
    return series("prodsafe_retry_gave_up_total{job_type=\"orders\",reason=\"" + reason + "\"}");
  }
  // An effect that fails `failures` times, then returns 42.
  auto effect(int failures = 0) {
    return [this, failures]() -> int {
      if (++calls <= failures) throw StoreUnavailable("exchange down");
      return 42;
    };
  }
};

std::runtime_error pager_down() { return std::runtime_error("pager endpoint down"); }

TEST_F(ExecutorHooksTest, AThrowingOnFinishDoesNotRunASucceededAttemptAgain) {
  RetryPolicy hooked = policy();
  hooked.hooks.on_finish = [](int, bool, milliseconds) { throw pager_down(); };
  EXPECT_EQ(run(hooked, effect()), 42);
  EXPECT_EQ(calls, 1) << "the effect succeeded once; a hook must not make it run again";
  EXPECT_EQ(hook_errors("on_finish"), 1);
  EXPECT_NE(log.text().find("pager endpoint down"), std::string::npos) << log.text();
  EXPECT_NE(log.text().find("on_finish"), std::string::npos);
}

TEST_F(ExecutorHooksTest, AThrowingOnFinishAfterAVoidSuccess) {
  RetryPolicy hooked = policy();
  hooked.hooks.on_finish = [](int, bool, milliseconds) { throw pager_down(); };
  run(hooked, [&] { ++calls; });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(hook_errors("on_finish"), 1);
}

TEST_F(ExecutorHooksTest, AHookThrowingANonStandardExceptionIsContainedToo) {
  RetryPolicy hooked = policy();
  hooked.hooks.on_finish = [](int, bool, milliseconds) { throw 7; };
  EXPECT_EQ(run(hooked, effect()), 42);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(hook_errors("on_finish"), 1);
}

TEST_F(ExecutorHooksTest, AThrowingOnFinishLeavesTheCallerTheAttemptsOwnError) {
  RetryPolicy hooked = policy(3);
  hooked.hooks.on_finish = [](int, bool, milliseconds) { throw pager_down(); };
  // Retries exhausted.
  EXPECT_THROW(run(hooked, effect(100)), StoreUnavailable);
  EXPECT_EQ(calls, 3);
  // Not retryable.
  calls = 0;
  EXPECT_THROW(run(hooked,
                   [&]() -> int {
                     ++calls;
                     throw InvalidArgument("bad order");
                   }),
               InvalidArgument);
  EXPECT_EQ(calls, 1);
  // A result still asking for a retry when retries end is returned.
  calls = 0;
  EXPECT_EQ(run_if(
                hooked, [&] { return ++calls; }, [](int) { return true; }),
            3);
  EXPECT_EQ(hook_errors("on_finish"), 3);
}

TEST_F(ExecutorHooksTest, AThrowingOnAttemptStillRunsEachAttempt) {
  RetryPolicy hooked = policy();
  hooked.hooks.on_attempt = [](int) { throw pager_down(); };
  EXPECT_EQ(run(hooked, effect(1)), 42);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(hook_errors("on_attempt"), 2);
}

TEST_F(ExecutorHooksTest, AThrowingOnRetryAfterAFailureStillRetriesOnce) {
  RetryPolicy hooked = policy();
  hooked.hooks.on_retry = [](int, milliseconds, const std::string&) { throw pager_down(); };
  EXPECT_EQ(run(hooked, effect(2)), 42);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(clock.slept(), 300ms) << "100 ms then 200 ms: no retry was added or skipped";
  EXPECT_EQ(hook_errors("on_retry"), 2);
}

TEST_F(ExecutorHooksTest, AThrowingOnRetryAfterAResultAddsNoAttempt) {
  RetryPolicy hooked = policy();
  hooked.hooks.on_retry = [](int, milliseconds, const std::string&) { throw pager_down(); };
  const std::string status = run_if(
      hooked,
      [&] {
        ++calls;
        return std::string(calls < 3 ? "pending" : "filled");
      },
      [](const std::string& s) { return s == "pending"; });
  EXPECT_EQ(status, "filled");
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(hook_errors("on_retry"), 2);
}

TEST_F(ExecutorHooksTest, AThrowingResultPredicateMakesTheResultFinal) {
  RetryPolicy hooked = policy();
  std::optional<bool> finished_ok;
  hooked.hooks.on_finish = [&](int, bool success, milliseconds) { finished_ok = success; };
  EXPECT_EQ(run_if(hooked, effect(), [](int) -> bool { throw pager_down(); }), 42);
  EXPECT_EQ(calls, 1) << "a predicate that cannot decide does not retry";
  EXPECT_EQ(finished_ok, true) << "the attempt returned: the loop ends as a success";
  EXPECT_EQ(hook_errors("retry_if_result"), 1);
  EXPECT_EQ(gave_up("exhausted"), 0);
}

TEST_F(ExecutorHooksTest, AThrowingRetryOnMeansNotRetryable) {
  RetryPolicy hooked = policy();
  hooked.retry_on = [](const std::exception&) -> bool { throw pager_down(); };
  EXPECT_THROW(run(hooked, effect(1)), StoreUnavailable) << "the attempt's own error";
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(hook_errors("retry_on"), 1);
  EXPECT_EQ(gave_up("not_retryable"), 1);
}

TEST_F(ExecutorHooksTest, AThrowingRetryAfterFallsBackToTheBackoff) {
  RetryPolicy hooked = policy();
  hooked.retry_after = [](const std::exception&) -> std::optional<milliseconds> {
    throw pager_down();
  };
  EXPECT_EQ(run(hooked, effect(1)), 42);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(clock.slept(), 100ms);
  EXPECT_EQ(hook_errors("retry_after"), 1);
}

TEST_F(ExecutorHooksTest, AThrowingGateRefusesTheRetryAndRefundsTheBudget) {
  RetryPolicy hooked = policy();
  hooked.allow_retry = []() -> bool { throw pager_down(); };
  hooked.budget = std::make_shared<RetryBudget>(
      RetryBudgetOptions{.ratio = 0.0, .min_retries_per_second = 1, .clock = &clock});
  EXPECT_THROW(run(hooked, effect(1)), StoreUnavailable) << "the attempt's own error";
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(hooked.budget->retries(), 0u);
  EXPECT_EQ(hook_errors("allow_retry"), 1);
  EXPECT_EQ(gave_up("breaker"), 1);
}

// The case: a success whose observers page (on_anomaly) and write to
// a store that is down (the tracker). Every observer still runs, the effect
// runs once, and each failing hook call is counted once.
TEST_F(ExecutorHooksTest, ObserversThatThrowOnSuccessDoNotRunTheEffectAgain) {
  auto store = std::make_shared<FlakyWindowStore>(&clock);
  RetryWindowTracker tracker(store);
  RetryHistogram histogram;
  RetryAnomalyDetector anomalies({.excessive_attempts = 2, .metrics = &registry});
  int pages = 0;
  RetryPolicy observed = policy();
  observed.hooks = observe({.histogram = &histogram,
                            .tracker = &tracker,
                            .anomalies = &anomalies,
                            .on_anomaly =
                                [&](const Anomaly&) {
                                  ++pages;
                                  throw pager_down();
                                },
                            .job_id = "job-9",
                            .job_type = "orders",
                            .clock = &clock});
  EXPECT_EQ(run(observed,
                [&]() -> int {
                  if (++calls == 1) throw StoreUnavailable("exchange down");
                  store->down = true;  // the tracker cannot close the window
                  return 42;
                }),
            42);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(histogram.counts()[RetryHistogram::bucket_for(2)], 1u);
  EXPECT_EQ(pages, 1) << "the anomaly was still found and paged without the tracker";
  EXPECT_EQ(hook_errors("on_finish"), 1);
  EXPECT_NE(log.text().find("window store down"), std::string::npos) << log.text();
  EXPECT_NE(log.text().find("pager endpoint down"), std::string::npos) << log.text();
}

TEST_F(ExecutorHooksTest, ATrackerDownAtTheFirstAttemptIsCountedNotFatal) {
  auto store = std::make_shared<FlakyWindowStore>(&clock);
  store->down = true;
  RetryWindowTracker tracker(store);
  RetryPolicy observed = policy();
  observed.hooks = observe({.tracker = &tracker, .job_id = "job-9", .job_type = "orders"});
  EXPECT_EQ(run(observed, effect()), 42);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(hook_errors("on_attempt"), 1);
  EXPECT_EQ(hook_errors("on_finish"), 1);
}

// The run_if case: on_spike pages on every retry the result asks for.
TEST_F(ExecutorHooksTest, AThrowingOnSpikeOnTheResultPathAddsNoAttempt) {
  RetrySpikeDetector spikes({.window = 1s,
                             .slots_per_window = 1,
                             .baseline_windows = 1,
                             .min_count = 1,
                             .cooldown = 0ms,
                             .clock = &clock,
                             .metrics = &registry});
  (void)spikes.record_retry();  // a baseline of 0 retries a window, once the window has passed
  clock.advance(3s);
  int alerts = 0;
  RetryPolicy observed = policy();
  observed.hooks = observe({.spikes = &spikes,
                            .on_spike =
                                [&](const SpikeAlert&) {
                                  ++alerts;
                                  throw pager_down();
                                },
                            .job_type = "orders"});
  const std::string status = run_if(
      observed,
      [&] {
        ++calls;
        return std::string(calls < 3 ? "pending" : "filled");
      },
      [](const std::string& s) { return s == "pending"; });
  EXPECT_EQ(status, "filled");
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(alerts, 2);
  EXPECT_EQ(hook_errors("on_retry"), 2);
}

// A policy shared by threads (the header allows it): every thread's hook
// error is counted, and each thread's effect runs once.
TEST_F(ExecutorHooksTest, ASharedPolicyContainsEveryThreadsHookErrors) {
  RetryPolicy shared = policy();
  shared.hooks.on_finish = [](int, bool, milliseconds) { throw pager_down(); };
  std::atomic<int> effects{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) EXPECT_GT(run(shared, [&] { return ++effects; }), 0);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(effects.load(), 200);
  EXPECT_EQ(hook_errors("on_finish"), 200);
}

}  // namespace
}  // namespace prodsafe::retry
