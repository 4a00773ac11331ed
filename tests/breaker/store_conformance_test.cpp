// One suite, every BreakerStore: what the store port decides, atomically, in
// one operation.
#include <gtest/gtest.h>

#include "breaker_store_harness.hpp"

namespace prodsafe::breaker {
namespace {

using namespace std::chrono_literals;
using prodsafe::testing::kBreak;
using prodsafe::testing::kJob;
using prodsafe::testing::kProbeWait;

template <class Harness>
class BreakerStoreConformanceTest : public prodsafe::testing::BreakerStoreFixture<Harness> {};

TYPED_TEST_SUITE(BreakerStoreConformanceTest, prodsafe::testing::BreakerHarnesses,
                 prodsafe::testing::BreakerHarnessNames);

TYPED_TEST(BreakerStoreConformanceTest, PermitsAreHandedOutInHalfOpenOnly) {
  const BreakerRules rules = this->rules(2);
  const Snapshot closed = this->store().acquire(kJob, rules);
  EXPECT_TRUE(closed.allowed);
  EXPECT_EQ(closed.permit, kNoPermit);
  this->store().record(kJob, Outcome::kFailure, rules);
  this->store().record(kJob, Outcome::kFailure, rules);
  const Snapshot open = this->store().acquire(kJob, rules);
  EXPECT_FALSE(open.allowed);
  EXPECT_EQ(open.permit, kNoPermit);
  this->harness.advance(rules.break_duration);
  const PermitId first = this->probe(rules);
  const PermitId second = this->probe(rules);
  EXPECT_NE(first, second);
  const Snapshot refused = this->store().acquire(kJob, rules);
  EXPECT_FALSE(refused.allowed) << "two probes at most";
  EXPECT_EQ(refused.permit, kNoPermit);
}

TYPED_TEST(BreakerStoreConformanceTest, AProbesSuccessCloses) {
  const BreakerRules rules = this->rules();
  this->trip_and_wait(rules);
  const PermitId permit = this->probe(rules);
  const Snapshot closed = this->store().record(kJob, Outcome::kSuccess, rules, permit);
  EXPECT_EQ(closed.state, State::kClosed);
  EXPECT_EQ(closed.previous, State::kHalfOpen);
  EXPECT_TRUE(closed.transitioned);
  EXPECT_EQ(closed.trips, 0u);
}

TYPED_TEST(BreakerStoreConformanceTest, AProbesFailureReopensWithALongerBreak) {
  const BreakerRules rules = this->rules();
  this->trip_and_wait(rules);
  const PermitId permit = this->probe(rules);
  const Snapshot reopened = this->store().record(kJob, Outcome::kFailure, rules, permit);
  EXPECT_EQ(reopened.state, State::kOpen);
  EXPECT_TRUE(reopened.transitioned);
  EXPECT_EQ(reopened.trips, 2u);
  EXPECT_GT(reopened.retry_after, kBreak);
  EXPECT_LE(reopened.retry_after, 2 * kBreak);
}

// A call started before the trip, or made by a process whose view is still
// CLOSED, ends while a probe is out: counted, but only the probe decides.
TYPED_TEST(BreakerStoreConformanceTest, OutcomesWithoutAPermitAreCountedAndDecideNothing) {
  const BreakerRules rules = this->rules();
  this->trip_and_wait(rules);
  const PermitId permit = this->probe(rules);
  const Snapshot failure = this->store().record(kJob, Outcome::kFailure, rules);
  EXPECT_EQ(failure.state, State::kHalfOpen) << "reopened by a call that held no permit";
  EXPECT_FALSE(failure.transitioned);
  EXPECT_EQ(failure.trips, 1u) << "the break must not grow";
  EXPECT_EQ(failure.failures, 1u);
  const Snapshot success = this->store().record(kJob, Outcome::kSuccess, rules);
  EXPECT_EQ(success.state, State::kHalfOpen) << "closed by a call that held no permit";
  EXPECT_EQ(success.successes, 1u);
  EXPECT_FALSE(this->store().acquire(kJob, rules).allowed) << "the probe's permit is still out";
  EXPECT_EQ(this->store().record(kJob, Outcome::kSuccess, rules, permit).state, State::kClosed);
}

// The first look after the break (a late outcome, no acquire yet) moves the
// breaker to HALF_OPEN; the outcome itself decides nothing.
TYPED_TEST(BreakerStoreConformanceTest, ALateOutcomeAfterTheBreakOnlyMovesToHalfOpen) {
  const BreakerRules rules = this->rules();
  this->trip_and_wait(rules);
  const Snapshot late = this->store().record(kJob, Outcome::kSuccess, rules);
  EXPECT_EQ(late.state, State::kHalfOpen);
  EXPECT_EQ(late.previous, State::kOpen);
  EXPECT_TRUE(late.transitioned);
  const Snapshot failed = this->store().record(kJob, Outcome::kFailure, rules);
  EXPECT_EQ(failed.state, State::kHalfOpen);
  EXPECT_EQ(failed.trips, 1u);
  EXPECT_EQ(this->store().record(kJob, Outcome::kSuccess, rules, this->probe(rules)).state,
            State::kClosed);
}

TYPED_TEST(BreakerStoreConformanceTest, APermitFromAnEarlierHalfOpenDecidesNothing) {
  const BreakerRules rules = this->rules();
  this->trip_and_wait(rules);
  const PermitId earlier = this->probe(rules);
  ASSERT_EQ(this->store().record(kJob, Outcome::kFailure, rules, earlier).state, State::kOpen);
  this->harness.advance(2 * kBreak);  // the second, doubled break
  const PermitId current = this->probe(rules);
  EXPECT_NE(current, earlier);
  EXPECT_EQ(this->store().record(kJob, Outcome::kSuccess, rules, earlier).state, State::kHalfOpen);
  EXPECT_EQ(this->store().record(kJob, Outcome::kFailure, rules, earlier).trips, 2u);
  EXPECT_EQ(this->store().record(kJob, Outcome::kSuccess, rules, current).state, State::kClosed);
}

// A probe that outlives max_half_open_wait has lost its permit, whether or not
// another caller took its place.
TYPED_TEST(BreakerStoreConformanceTest, AnExpiredPermitDecidesNothing) {
  const BreakerRules rules = this->rules();
  this->trip_and_wait(rules);
  const PermitId slow = this->probe(rules);
  this->harness.advance(rules.max_half_open_wait);
  const Snapshot late = this->store().record(kJob, Outcome::kFailure, rules, slow);
  EXPECT_EQ(late.state, State::kHalfOpen);
  EXPECT_EQ(late.trips, 1u);
  const PermitId next = this->probe(rules);
  EXPECT_NE(next, slow);
  EXPECT_EQ(this->store().record(kJob, Outcome::kSuccess, rules, slow).state, State::kHalfOpen)
      << "the slow probe's permit was handed to another";
  EXPECT_EQ(this->store().record(kJob, Outcome::kSuccess, rules, next).state, State::kClosed);
}

// With several probes out, the first outcome decides; a later one cannot undo it.
TYPED_TEST(BreakerStoreConformanceTest, TheFirstOfSeveralProbesDecides) {
  const BreakerRules rules = this->rules(2);
  this->trip_and_wait(rules);
  const PermitId first = this->probe(rules);
  const PermitId second = this->probe(rules);
  ASSERT_EQ(this->store().record(kJob, Outcome::kFailure, rules, first).state, State::kOpen);
  const Snapshot after = this->store().record(kJob, Outcome::kSuccess, rules, second);
  EXPECT_EQ(after.state, State::kOpen) << "a reopened breaker closed by the other probe";
  EXPECT_EQ(after.trips, 2u);
  // And the other way round: a success closes; the other probe's failure is
  // then an ordinary failure in CLOSED.
  this->harness.advance(2 * kBreak);
  const PermitId third = this->probe(rules);
  const PermitId fourth = this->probe(rules);
  ASSERT_EQ(this->store().record(kJob, Outcome::kSuccess, rules, third).state, State::kClosed);
  const Snapshot counted = this->store().record(kJob, Outcome::kFailure, rules, fourth);
  EXPECT_EQ(counted.state, State::kClosed);
  EXPECT_EQ(counted.failures, 1u);
}

}  // namespace
}  // namespace prodsafe::breaker
