// One suite, every BreakerStore: BreakerStore::watch() delivers the
// transitions made by anyone sharing the store's state, in order, until the
// watch stops.
#include <mutex>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "breaker_store_harness.hpp"

namespace prodsafe::breaker {
namespace {

using namespace std::chrono_literals;
using prodsafe::testing::kBreak;
using prodsafe::testing::kJob;

// What a watch delivered.
class Seen {
 public:
  TransitionCallback callback() {
    return [this](const Transition& transition) {
      std::lock_guard lock(mutex_);
      transitions_.push_back(transition);
    };
  }
  std::vector<Transition> transitions() const {
    std::lock_guard lock(mutex_);
    return transitions_;
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return transitions_.size();
  }
  std::vector<State> states() const {
    std::vector<State> out;
    for (const Transition& each : transitions()) out.push_back(each.state);
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Transition> transitions_;
};

template <class Harness>
class BreakerStoreWatchTest : public prodsafe::testing::BreakerStoreFixture<Harness> {
 protected:
  std::shared_ptr<BreakerStore> peer = this->harness.peer();

  Subscription watch(Seen& seen, std::string_view job = kJob) {
    Subscription subscription = this->store().watch(job, seen.callback());
    EXPECT_TRUE(this->harness.await([&] { return subscription.listening(); }));
    return subscription;
  }
  bool await_count(const Seen& seen, std::size_t count) {
    return this->harness.await([&] { return seen.size() >= count; });
  }
};

TYPED_TEST_SUITE(BreakerStoreWatchTest, prodsafe::testing::BreakerHarnesses,
                 prodsafe::testing::BreakerHarnessNames);

TYPED_TEST(BreakerStoreWatchTest, ATripMadeThroughAnotherStoreIsDelivered) {
  Seen seen;
  const Subscription subscription = this->watch(seen);
  const BreakerRules rules = this->rules();
  this->peer->record(kJob, Outcome::kFailure, rules);
  ASSERT_EQ(this->peer->record(kJob, Outcome::kFailure, rules).state, State::kOpen);
  ASSERT_TRUE(this->await_count(seen, 1));
  const Transition opened = seen.transitions().at(0);
  EXPECT_EQ(opened.state, State::kOpen);
  EXPECT_GT(opened.retry_after, 0ms);
  EXPECT_LE(opened.retry_after, kBreak);
  EXPECT_EQ(opened.trips, 1u);
}

TYPED_TEST(BreakerStoreWatchTest, EveryTransitionIsDeliveredInOrderWithItsTrips) {
  Seen seen;
  const Subscription subscription = this->watch(seen);
  const BreakerRules rules = this->rules();
  this->trip_and_wait(rules);
  const PermitId permit = this->probe(rules);
  ASSERT_EQ(this->peer->record(kJob, Outcome::kFailure, rules, permit).state, State::kOpen);
  this->peer->control(kJob, Command::kForceOpen, rules);
  this->peer->control(kJob, Command::kDisable, rules);
  this->peer->control(kJob, Command::kReset, rules);
  ASSERT_TRUE(this->await_count(seen, 6));
  this->harness.settle();
  EXPECT_EQ(seen.states(),
            (std::vector<State>{State::kOpen, State::kHalfOpen, State::kOpen, State::kForcedOpen,
                                State::kDisabled, State::kClosed}));
  const std::vector<Transition> all = seen.transitions();
  EXPECT_EQ(all[1].trips, 1u);
  EXPECT_EQ(all[1].retry_after, 0ms);
  EXPECT_EQ(all[2].trips, 2u);
  EXPECT_GT(all[2].retry_after, kBreak) << "the second break is doubled";
  EXPECT_EQ(all[3].retry_after, 0ms);
  EXPECT_EQ(all[5].trips, 0u);
}

TYPED_TEST(BreakerStoreWatchTest, OperationsThatChangeNoStateDeliverNothing) {
  Seen seen;
  const Subscription subscription = this->watch(seen);
  const BreakerRules rules = this->rules();
  this->peer->record(kJob, Outcome::kFailure, rules);
  this->peer->record(kJob, Outcome::kSuccess, rules);
  (void)this->peer->read(kJob, rules);
  (void)this->peer->acquire(kJob, rules);
  this->peer->control(kJob, Command::kForceClose, rules);
  this->peer->control(kJob, Command::kReset, rules);
  this->harness.settle();
  EXPECT_EQ(seen.size(), 0u);
}

TYPED_TEST(BreakerStoreWatchTest, OnlyTheWatchedJobTypesTransitionsAreDelivered) {
  Seen seen;
  const Subscription subscription = this->watch(seen);
  const BreakerRules rules = this->rules();
  this->peer->control("payments", Command::kForceOpen, rules);
  this->peer->control(kJob, Command::kDisable, rules);
  ASSERT_TRUE(this->await_count(seen, 1));
  this->harness.settle();
  EXPECT_EQ(seen.states(), (std::vector<State>{State::kDisabled}));
}

TYPED_TEST(BreakerStoreWatchTest, EveryWatcherIsCalledAndAStoppedOneNoLonger) {
  Seen first;
  Seen second;
  Subscription watching_first = this->watch(first);
  const Subscription watching_second = this->watch(second);
  const BreakerRules rules = this->rules();
  this->peer->control(kJob, Command::kForceOpen, rules);
  ASSERT_TRUE(this->await_count(first, 1));
  ASSERT_TRUE(this->await_count(second, 1));
  watching_first.stop();
  EXPECT_FALSE(watching_first.listening());
  EXPECT_TRUE(watching_second.listening());
  this->peer->control(kJob, Command::kReset, rules);
  ASSERT_TRUE(this->await_count(second, 2));
  this->harness.settle();
  EXPECT_EQ(first.size(), 1u) << "called after stop()";
}

TYPED_TEST(BreakerStoreWatchTest, ADestroyedSubscriptionStopsWatching) {
  Seen seen;
  const BreakerRules rules = this->rules();
  {
    const Subscription subscription = this->watch(seen);
    this->peer->control(kJob, Command::kForceOpen, rules);
    ASSERT_TRUE(this->await_count(seen, 1));
  }
  this->peer->control(kJob, Command::kReset, rules);
  this->harness.settle();
  EXPECT_EQ(seen.size(), 1u);
}

// A callback may read the store (the breaker refreshes its view so), and one
// that throws loses only its own delivery.
TYPED_TEST(BreakerStoreWatchTest, ACallbackMayUseTheStoreAndMayThrow) {
  std::mutex mutex;
  std::vector<State> read_back;
  const BreakerRules rules = this->rules();
  BreakerStore& store = this->store();
  Subscription subscription = store.watch(kJob, [&](const Transition& transition) {
    const State state = store.read(kJob, rules).state;
    {
      std::lock_guard lock(mutex);
      read_back.push_back(state);
    }
    if (transition.state == State::kForcedOpen) throw std::runtime_error("a hook failed");
  });
  ASSERT_TRUE(this->harness.await([&] { return subscription.listening(); }));
  this->peer->control(kJob, Command::kForceOpen, rules);
  this->peer->control(kJob, Command::kDisable, rules);
  ASSERT_TRUE(this->harness.await([&] {
    std::lock_guard lock(mutex);
    return read_back.size() == 2;
  }));
  std::lock_guard lock(mutex);
  EXPECT_EQ(read_back.back(), State::kDisabled);
  EXPECT_TRUE(subscription.listening()) << "a throwing callback ended the watch";
}

TYPED_TEST(BreakerStoreWatchTest, ACallbackMayStopItsOwnWatch) {
  Seen seen;
  Subscription subscription;
  TransitionCallback record = seen.callback();
  // Stops first: once the test sees the delivery, the stop has happened.
  subscription = this->store().watch(kJob, [&](const Transition& transition) {
    subscription.stop();
    record(transition);
  });
  ASSERT_TRUE(this->harness.await([&] { return subscription.listening(); }));
  const BreakerRules rules = this->rules();
  this->peer->control(kJob, Command::kForceOpen, rules);
  ASSERT_TRUE(this->await_count(seen, 1));
  this->peer->control(kJob, Command::kReset, rules);
  this->harness.settle();
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_FALSE(subscription.listening());
}

}  // namespace
}  // namespace prodsafe::breaker
