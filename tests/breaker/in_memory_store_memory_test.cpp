// InMemoryBreakerStore when memory runs out while it delivers transitions to
// its watchers (tests/support/allocation_failure.hpp fails the allocation).
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include <gtest/gtest.h>

#include "print_state.hpp"
#include "prodsafe/breaker/in_memory_breaker_store.hpp"
#include "prodsafe/core/clock.hpp"
#include "support/allocation_failure.hpp"

namespace prodsafe::breaker {
namespace {

constexpr int kWatchers = 3;

class InMemoryBreakerStoreMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rules.failure_threshold = 1;
    for (int i = 0; i < kWatchers; ++i) {
      subscriptions.push_back(store.watch("job", [this](const Transition& transition) {
        std::lock_guard lock(mutex);
        seen.push_back(transition.state);
      }));
    }
  }
  std::vector<State> states() {
    std::lock_guard lock(mutex);
    return seen;
  }

  ManualClock clock;
  InMemoryBreakerStore store{&clock};
  BreakerRules rules;
  std::vector<Subscription> subscriptions;
  std::mutex mutex;
  std::vector<State> seen;  // guarded by mutex
};

// Delivery copies the job's watcher list (kWatchers shared_ptrs) before it
// calls them back; that copy failing must neither lose the transition nor
// stop every later delivery.
TEST_F(InMemoryBreakerStoreMemoryTest, AFailedDeliveryNeitherLosesTheTransitionNorStopsLaterOnes) {
  {
    testing::FailAllocations fail({.size = kWatchers * sizeof(std::shared_ptr<int>)});
    EXPECT_THROW((void)store.record("job", Outcome::kFailure, rules), std::bad_alloc);
    ASSERT_EQ(fail.failed(), 1U) << "the watcher list's copy is no longer that size";
  }
  EXPECT_EQ(store.read("job", rules).state, State::kOpen);  // the trip itself stands
  EXPECT_TRUE(states().empty());

  (void)store.control("job", Command::kForceClose, rules);
  std::vector<State> want(kWatchers, State::kOpen);
  want.insert(want.end(), kWatchers, State::kClosed);
  EXPECT_EQ(states(), want) << "the OPEN transition first, then the CLOSED one, to every watcher";
}

}  // namespace
}  // namespace prodsafe::breaker
