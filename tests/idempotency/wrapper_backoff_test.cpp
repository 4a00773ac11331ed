// The wrapper's waits: commit retries and in-progress polls double as
// WrapperOptions documents (ManualClock counts the sleeps).
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "prodsafe/core/clock.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/idempotency/in_memory_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "store_harness.hpp"
#include "support/failing_effect_store.hpp"

namespace prodsafe::idempotency {
namespace {

using namespace std::chrono_literals;

TEST(WrapperBackoffTest, CommitRetriesWaitTheDoublingDelay) {
  ManualClock clock;
  testing::TempDir journal;
  auto store =
      std::make_shared<testing::FailingEffectStore>(std::make_shared<InMemoryEffectStore>(&clock));
  store->fail_commits = -1;
  SideEffectWrapper wrapper(store, {.renew_leases = false,
                                    .commit_attempts = 4,
                                    .commit_retry_delay = 10ms,
                                    .journal_directory = journal.path().string(),
                                    .clock = &clock});
  const auto outcome =
      wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o-1", [] { return std::string("ok"); });
  EXPECT_TRUE(outcome.commit_pending);
  EXPECT_EQ(clock.sleep_count(), 3U);
  EXPECT_EQ(clock.slept(), 10ms + 20ms + 40ms);
}

TEST(WrapperBackoffTest, InProgressPollsDoubleUpToTheirMax) {
  ManualClock clock;
  testing::TempDir first_journal;
  testing::TempDir second_journal;
  auto store = std::make_shared<InMemoryEffectStore>(&clock);
  SideEffectWrapper first(
      store,
      {.renew_leases = false, .journal_directory = first_journal.path().string(), .clock = &clock});
  SideEffectWrapper second(store, {.renew_leases = false,
                                   .in_progress = InProgressPolicy::kWait,
                                   .wait_timeout = 100ms,
                                   .wait_poll_initial = 10ms,
                                   .wait_poll_max = 25ms,
                                   .journal_directory = second_journal.path().string(),
                                   .clock = &clock});
  std::promise<void> started;
  std::promise<void> release;
  std::thread holder([&] {
    first.execute_once(EffectType::ORDER_PLACEMENT, "o-1", [&] {
      started.set_value();
      release.get_future().wait();
      return std::string("ok");
    });
  });
  started.get_future().wait();
  EXPECT_THROW(
      second.execute_once(EffectType::ORDER_PLACEMENT, "o-1", [] { return std::string("twice"); }),
      AlreadyInProgress);
  release.set_value();
  holder.join();
  // 10, 20, 25, 25, then the 20 ms left of wait_timeout.
  EXPECT_EQ(clock.sleep_count(), 5U);
  EXPECT_EQ(clock.slept(), 100ms);
}

}  // namespace
}  // namespace prodsafe::idempotency
