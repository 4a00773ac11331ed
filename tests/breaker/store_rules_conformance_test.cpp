// One suite, every BreakerStore: the state machine's rules (the Lua script and
// the in-memory store each implement them), outside the HALF_OPEN probes that
// store_conformance_test.cpp covers.
#include <gtest/gtest.h>

#include "breaker_store_harness.hpp"
#include "prodsafe/core/error.hpp"

namespace prodsafe::breaker {
namespace {

using namespace std::chrono_literals;
using prodsafe::testing::kBreak;
using prodsafe::testing::kJob;

template <class Harness>
class BreakerRulesConformanceTest : public prodsafe::testing::BreakerStoreFixture<Harness> {};

TYPED_TEST_SUITE(BreakerRulesConformanceTest, prodsafe::testing::BreakerHarnesses,
                 prodsafe::testing::BreakerHarnessNames);

TYPED_TEST(BreakerRulesConformanceTest, FailuresOpenAtTheThresholdAndSuccessesNever) {
  BreakerRules rules = this->rules();
  rules.failure_threshold = 3;
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(this->record(Outcome::kSuccess, rules).state, State::kClosed);
  const Snapshot first = this->record(Outcome::kFailure, rules);
  EXPECT_EQ(first.state, State::kClosed);
  EXPECT_EQ(first.failures, 1u);
  EXPECT_EQ(first.successes, 5u);
  EXPECT_FALSE(first.transitioned);
  EXPECT_EQ(this->record(Outcome::kFailure, rules).failures, 2u);
  const Snapshot opened = this->record(Outcome::kFailure, rules);
  EXPECT_EQ(opened.state, State::kOpen);
  EXPECT_EQ(opened.previous, State::kClosed);
  EXPECT_TRUE(opened.transitioned);
  EXPECT_EQ(opened.failures, 3u) << "the failures that opened it";
  EXPECT_EQ(opened.trips, 1u);
  EXPECT_GT(opened.retry_after, 0ms);
  EXPECT_LE(opened.retry_after, kBreak);
  const Snapshot read = this->store().read(kJob, rules);
  EXPECT_EQ(read.state, State::kOpen);
  EXPECT_EQ(read.failures, 0u) << "opening empties the window";
}

// Ratio mode: the count threshold no longer applies; failures / calls does,
// once the window holds minimum_throughput calls.
TYPED_TEST(BreakerRulesConformanceTest, RatioModeOpensAtTheRatioWithEnoughCalls) {
  BreakerRules rules = this->rules();
  rules.failure_threshold = 1;
  rules.failure_ratio = 0.5;
  rules.minimum_throughput = 4;
  EXPECT_EQ(this->record(Outcome::kFailure, rules).state, State::kClosed);
  EXPECT_EQ(this->record(Outcome::kSuccess, rules).state, State::kClosed);
  EXPECT_EQ(this->record(Outcome::kSuccess, rules).state, State::kClosed) << "1 of 3";
  const Snapshot opened = this->record(Outcome::kFailure, rules);
  EXPECT_EQ(opened.state, State::kOpen) << "2 of 4 is the ratio";
  EXPECT_EQ(opened.failures, 2u);
  EXPECT_EQ(opened.successes, 2u);
  // Under the minimum throughput, even all failures do not open it.
  this->store().control(kJob, Command::kReset, rules);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(this->record(Outcome::kFailure, rules).state, State::kClosed) << i + 1 << " of 4";
  }
}

TYPED_TEST(BreakerRulesConformanceTest, OutcomesLeaveTheWindowWithTheirBucket) {
  BreakerRules rules = this->rules();
  rules.time_window = 600ms;
  rules.window_buckets = 3;
  EXPECT_EQ(this->record(Outcome::kFailure, rules).failures, 1u);
  this->harness.advance(rules.time_window);
  const Snapshot after = this->record(Outcome::kFailure, rules);
  EXPECT_EQ(after.state, State::kClosed) << "the first failure should have left the window";
  EXPECT_EQ(after.failures, 1u);
  EXPECT_EQ(this->store().read(kJob, rules).failures, 1u);
}

TYPED_TEST(BreakerRulesConformanceTest, OpenRefusesCallsAndIgnoresOutcomesUntilItsBreakEnds) {
  const BreakerRules rules = this->rules();
  this->record(Outcome::kFailure, rules);
  this->record(Outcome::kFailure, rules);
  const Snapshot refused = this->store().acquire(kJob, rules);
  EXPECT_EQ(refused.state, State::kOpen);
  EXPECT_FALSE(refused.allowed);
  EXPECT_GT(refused.retry_after, 0ms);
  const Snapshot ignored = this->record(Outcome::kSuccess, rules);
  EXPECT_EQ(ignored.state, State::kOpen);
  EXPECT_EQ(ignored.successes, 0u);
  EXPECT_EQ(this->record(Outcome::kFailure, rules).trips, 1u) << "a failure in OPEN is no trip";
  this->harness.advance(kBreak);
  // Only record() and acquire() move an ended break to HALF_OPEN.
  const Snapshot read = this->store().read(kJob, rules);
  EXPECT_EQ(read.state, State::kOpen);
  EXPECT_EQ(read.retry_after, 0ms);
  const Snapshot half_open = this->store().acquire(kJob, rules);
  EXPECT_EQ(half_open.state, State::kHalfOpen);
  EXPECT_EQ(half_open.previous, State::kOpen);
  EXPECT_TRUE(half_open.transitioned);
}

// Each consecutive trip multiplies the break, up to max_break_duration; a
// close starts again from the first break.
TYPED_TEST(BreakerRulesConformanceTest, TheBreakGrowsUpToItsCapAndACloseStartsItAgain) {
  BreakerRules rules = this->rules();
  rules.break_multiplier = 3.0;
  rules.max_break_duration = kBreak + 150ms;
  this->trip_and_wait(rules);
  const Snapshot second = this->record(Outcome::kFailure, rules, this->probe(rules));
  EXPECT_EQ(second.trips, 2u);
  EXPECT_GT(second.retry_after, kBreak);
  EXPECT_LE(second.retry_after, rules.max_break_duration) << "capped, not tripled";
  this->harness.advance(rules.max_break_duration);
  const Snapshot third = this->record(Outcome::kFailure, rules, this->probe(rules));
  EXPECT_EQ(third.trips, 3u);
  EXPECT_GT(third.retry_after, kBreak);
  EXPECT_LE(third.retry_after, rules.max_break_duration);
  this->harness.advance(rules.max_break_duration);
  ASSERT_EQ(this->record(Outcome::kSuccess, rules, this->probe(rules)).state, State::kClosed);
  this->record(Outcome::kFailure, rules);
  const Snapshot again = this->record(Outcome::kFailure, rules);
  EXPECT_EQ(again.trips, 1u);
  EXPECT_LE(again.retry_after, kBreak);
}

TYPED_TEST(BreakerRulesConformanceTest, AHalfOpenWithoutAFreePermitSaysWhenOneFrees) {
  const BreakerRules rules = this->rules();
  this->trip_and_wait(rules);
  (void)this->probe(rules);
  const Snapshot refused = this->store().acquire(kJob, rules);
  EXPECT_EQ(refused.state, State::kHalfOpen);
  EXPECT_FALSE(refused.allowed);
  EXPECT_GT(refused.retry_after, 0ms);
  EXPECT_LE(refused.retry_after, rules.max_half_open_wait);
}

TYPED_TEST(BreakerRulesConformanceTest, ForcedOpenRefusesEverythingUntilAnOperatorCloses) {
  const BreakerRules rules = this->rules();
  this->record(Outcome::kFailure, rules);
  const Snapshot forced = this->store().control(kJob, Command::kForceOpen, rules);
  EXPECT_EQ(forced.state, State::kForcedOpen);
  EXPECT_EQ(forced.previous, State::kClosed);
  EXPECT_TRUE(forced.transitioned);
  for (int i = 0; i < 3; ++i) this->record(Outcome::kFailure, rules);
  EXPECT_EQ(this->record(Outcome::kSuccess, rules).state, State::kForcedOpen);
  this->harness.advance(kBreak);
  const Snapshot refused = this->store().acquire(kJob, rules);
  EXPECT_EQ(refused.state, State::kForcedOpen) << "no timed recovery";
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, 0ms);
  EXPECT_EQ(refused.trips, 0u) << "forcing open is no trip";
  const Snapshot closed = this->store().control(kJob, Command::kForceClose, rules);
  EXPECT_EQ(closed.state, State::kClosed);
  EXPECT_EQ(closed.previous, State::kForcedOpen);
  EXPECT_EQ(closed.failures, 0u);
  EXPECT_EQ(this->record(Outcome::kFailure, rules).state, State::kClosed)
      << "the failure from before the force survived the close";
}

TYPED_TEST(BreakerRulesConformanceTest, DisabledAllowsEverythingAndNeverTrips) {
  const BreakerRules rules = this->rules();
  const Snapshot disabled = this->store().control(kJob, Command::kDisable, rules);
  EXPECT_EQ(disabled.state, State::kDisabled);
  EXPECT_TRUE(disabled.transitioned);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(this->record(Outcome::kFailure, rules).state, State::kDisabled);
  }
  const Snapshot allowed = this->store().acquire(kJob, rules);
  EXPECT_TRUE(allowed.allowed);
  EXPECT_EQ(allowed.permit, kNoPermit);
  const Snapshot reset = this->store().control(kJob, Command::kReset, rules);
  EXPECT_EQ(reset.state, State::kClosed);
  EXPECT_EQ(reset.previous, State::kDisabled);
  EXPECT_EQ(this->record(Outcome::kFailure, rules).failures, 1u)
      << "failures while disabled were counted";
}

TYPED_TEST(BreakerRulesConformanceTest, ForceCloseAndResetEndABreakAndItsTrips) {
  const BreakerRules rules = this->rules();
  this->record(Outcome::kFailure, rules);
  this->record(Outcome::kFailure, rules);
  const Snapshot closed = this->store().control(kJob, Command::kForceClose, rules);
  EXPECT_EQ(closed.state, State::kClosed);
  EXPECT_EQ(closed.previous, State::kOpen);
  EXPECT_TRUE(closed.transitioned);
  EXPECT_EQ(closed.trips, 0u);
  EXPECT_EQ(closed.retry_after, 0ms);
  EXPECT_TRUE(this->store().acquire(kJob, rules).allowed);
  // Reset in CLOSED is no transition, but empties the window.
  this->record(Outcome::kFailure, rules);
  const Snapshot reset = this->store().control(kJob, Command::kReset, rules);
  EXPECT_EQ(reset.state, State::kClosed);
  EXPECT_FALSE(reset.transitioned);
  EXPECT_EQ(reset.failures, 0u);
  EXPECT_EQ(this->record(Outcome::kFailure, rules).state, State::kClosed);
}

// Who forced a breaker, and when, is kept with it for operators (the
// dashboard's "forced by") until a reset or the breaker's own next
// transition.
TYPED_TEST(BreakerRulesConformanceTest, AForcedStateNamesWhoForcedItAndWhen) {
  const BreakerRules rules = this->rules();
  const auto before = this->harness.system_now() - 5s;
  EXPECT_EQ(this->store().read(kJob, rules).forced_by, "") << "never forced";
  const Snapshot forced = this->store().control(kJob, Command::kForceOpen, rules, "ops:alice");
  EXPECT_EQ(forced.forced_by, "ops:alice");
  const auto at = std::chrono::system_clock::time_point(forced.forced_at);
  EXPECT_GT(at, before);
  EXPECT_LT(at, this->harness.system_now() + 5s);
  EXPECT_EQ(this->store().read(kJob, rules).forced_by, "ops:alice");
  this->record(Outcome::kFailure, rules);
  EXPECT_EQ(this->store().acquire(kJob, rules).forced_by, "ops:alice") << "outcomes keep it";

  EXPECT_EQ(this->store().control(kJob, Command::kDisable, rules, "ops:bob").forced_by, "ops:bob");
  EXPECT_EQ(this->store().control(kJob, Command::kReset, rules, "ops:carol").forced_by, "")
      << "a reset ends what was forced";
  EXPECT_EQ(this->store().read(kJob, rules).forced_by, "");

  // A forced close holds until the breaker trips by itself.
  EXPECT_EQ(this->store().control(kJob, Command::kForceClose, rules, "ops:dave").forced_by,
            "ops:dave");
  EXPECT_EQ(this->record(Outcome::kFailure, rules).forced_by, "ops:dave");
  const Snapshot tripped = this->record(Outcome::kFailure, rules);
  ASSERT_EQ(tripped.state, State::kOpen);
  EXPECT_EQ(tripped.forced_by, "") << "the trip is the breaker's own";
  EXPECT_EQ(tripped.forced_at, std::chrono::milliseconds(0));
  EXPECT_EQ(this->store().read(kJob, rules).forced_by, "");

  // Any bytes, up to 256 of them; more is refused and changes nothing.
  const std::string odd("op\xff\x01:\"eve\"", 10);
  EXPECT_EQ(this->store().control(kJob, Command::kForceOpen, rules, odd).forced_by, odd);
  EXPECT_THROW((void)this->store().control(kJob, Command::kReset, rules, std::string(257, 'x')),
               prodsafe::InvalidArgument);
  EXPECT_EQ(this->store().read(kJob, rules).state, State::kForcedOpen);
  EXPECT_EQ(this->store().control(kJob, Command::kReset, rules, std::string(256, 'x')).state,
            State::kClosed);
}

// `allowed` is acquire()'s answer; the other operations always report true,
// whatever the state (a caller must not take a read for a permission).
TYPED_TEST(BreakerRulesConformanceTest, OnlyAcquireRefuses) {
  const BreakerRules rules = this->rules();
  this->record(Outcome::kFailure, rules);
  EXPECT_TRUE(this->record(Outcome::kFailure, rules).allowed);
  EXPECT_TRUE(this->store().read(kJob, rules).allowed) << "read in OPEN";
  EXPECT_TRUE(this->record(Outcome::kFailure, rules).allowed) << "record in OPEN";
  EXPECT_TRUE(this->store().control(kJob, Command::kForceOpen, rules).allowed);
  EXPECT_TRUE(this->store().read(kJob, rules).allowed) << "read in FORCED_OPEN";
  EXPECT_FALSE(this->store().acquire(kJob, rules).allowed);
}

TYPED_TEST(BreakerRulesConformanceTest, JobTypesAreIndependent) {
  const BreakerRules rules = this->rules();
  this->record(Outcome::kFailure, rules);
  this->record(Outcome::kFailure, rules);
  const Snapshot other = this->store().read("payments", rules);
  EXPECT_EQ(other.state, State::kClosed);
  EXPECT_EQ(other.failures, 0u);
  EXPECT_TRUE(this->store().acquire("payments", rules).allowed);
}

}  // namespace
}  // namespace prodsafe::breaker
