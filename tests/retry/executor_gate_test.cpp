// The executor's gate (RetryPolicy::allow_retry) against a real CircuitBreaker
// in HALF_OPEN: asking the gate takes the fleet's probe permit, so the
// executor asks only once every other check has let the retry through.
#include <stdexcept>

#include <gtest/gtest.h>

#include "prodsafe/breaker/circuit_breaker.hpp"
#include "prodsafe/breaker/in_memory_breaker_store.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/retry/executor.hpp"

namespace prodsafe::retry {
namespace {

using namespace std::chrono_literals;

class ExecutorGateTest : public ::testing::Test {
 protected:
  ManualClock clock;
  breaker::CircuitBreaker breaker{std::make_shared<breaker::InMemoryBreakerStore>(&clock),
                                  "exchange",
                                  {.failure_threshold = 3,
                                   .break_duration = 10s,
                                   .half_open_max_probes = 1,
                                   .max_half_open_wait = 30s,
                                   .clock = &clock}};

  // Opens the breaker and waits out the break: the next can_retry() takes
  // the only probe permit.
  void half_open() {
    for (int i = 0; i < 3; ++i) breaker.record_failure();
    clock.advance(11s);
  }
  RetryPolicy policy() {
    RetryPolicy made{.max_attempts = 5,
                     .base_delay = 100ms,
                     .max_delay = 2s,
                     .jitter = Jitter::kNone,
                     .clock = &clock,
                     .seed = 1};
    made.allow_retry = breaker.gate();
    return made;
  }
  static int fail() { throw StoreUnavailable("exchange down"); }
};

TEST_F(ExecutorGateTest, ASpentBudgetLeavesTheProbePermitFree) {
  half_open();
  RetryPolicy budgeted = policy();
  budgeted.budget = std::make_shared<RetryBudget>(
      RetryBudgetOptions{.ratio = 0.0, .min_retries_per_second = 0.0, .clock = &clock});
  EXPECT_THROW(run(budgeted, fail), StoreUnavailable);
  EXPECT_EQ(budgeted.budget->refused(), 1u);
  EXPECT_TRUE(breaker.can_retry().allowed)
      << "the loop gave up on its budget; the fleet's probe must not wait 30 s for it";
}

TEST_F(ExecutorGateTest, APassedDeadlineLeavesTheProbePermitFree) {
  half_open();
  RetryPolicy limited = policy();
  limited.max_total_time = 50ms;  // the first retry's 100 ms would pass it
  int calls = 0;
  EXPECT_THROW(run(limited,
                   [&]() -> int {
                     ++calls;
                     return fail();
                   }),
               StoreUnavailable);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(breaker.can_retry().allowed)
      << "the loop gave up on its deadline; the fleet's probe must not wait 30 s for it";
}

TEST_F(ExecutorGateTest, AGrantedProbeIsTheRetry) {
  half_open();
  int calls = 0;
  const int filled = run(policy(), [&]() -> int {
    if (++calls == 1) return fail();
    breaker.record_success();  // the retry ran on the permit and reports
    return 7;
  });
  EXPECT_EQ(filled, 7);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(breaker.state(), breaker::State::kClosed);
}

TEST_F(ExecutorGateTest, ARefusingGateGivesTheBudgetItsRetryBack) {
  RetryPolicy refused = policy();
  refused.allow_retry = [] { return false; };
  refused.budget = std::make_shared<RetryBudget>(
      RetryBudgetOptions{.ratio = 0.0, .min_retries_per_second = 0.1, .clock = &clock});
  const double before = refused.budget->balance();
  EXPECT_THROW(run(refused, fail), StoreUnavailable);
  EXPECT_EQ(refused.budget->retries(), 0u) << "no retry was made";
  EXPECT_DOUBLE_EQ(refused.budget->balance(), before);
}

}  // namespace
}  // namespace prodsafe::retry
