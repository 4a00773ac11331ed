// One suite, every RetryWindowStore: what the port promises (retry_window.hpp).
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "window_store_harness.hpp"

namespace prodsafe::retry {
namespace {

using namespace std::chrono_literals;

constexpr auto kTtl = 1h;

template <class Harness>
class WindowStoreConformanceTest : public ::testing::Test {
 protected:
  Harness harness;
  RetryWindowStore& store() { return *store_; }
  std::shared_ptr<RetryWindowStore> peer = harness.peer();

  // Whether `stamp` is the store's time between `before` and now.
  ::testing::AssertionResult stamped_between(std::chrono::system_clock::time_point stamp,
                                             std::chrono::system_clock::time_point before) {
    const auto after = harness.now();
    if (stamp >= before - Harness::kStampError && stamp <= after + Harness::kStampError) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "stamped outside the call";
  }

 private:
  std::shared_ptr<RetryWindowStore> store_ = harness.store();
};

TYPED_TEST_SUITE(WindowStoreConformanceTest, prodsafe::testing::WindowHarnesses,
                 prodsafe::testing::WindowHarnessNames);

TYPED_TEST(WindowStoreConformanceTest, StartOpensAWindowWithOneAttempt) {
  const auto before = this->harness.now();
  const RetryWindow started = this->store().start("job-1", "settlement", kTtl);
  EXPECT_EQ(started.job_id, "job-1");
  EXPECT_EQ(started.job_type, "settlement");
  EXPECT_EQ(started.attempts, 1);
  EXPECT_EQ(started.first_attempt, started.last_attempt);
  EXPECT_TRUE(this->stamped_between(started.first_attempt, before));
  EXPECT_EQ(started.duration, 0ms);
  EXPECT_FALSE(started.success.has_value());
}

TYPED_TEST(WindowStoreConformanceTest, IncrementCountsAnAttemptAndStampsIt) {
  const RetryWindow started = this->store().start("job-1", "settlement", kTtl);
  this->harness.advance(100ms);
  const auto before = this->harness.now();
  const auto incremented = this->store().increment("job-1");
  ASSERT_TRUE(incremented.has_value());
  EXPECT_EQ(incremented->job_id, "job-1");
  EXPECT_EQ(incremented->job_type, "settlement");
  EXPECT_EQ(incremented->attempts, 2);
  EXPECT_EQ(incremented->first_attempt, started.first_attempt);
  EXPECT_TRUE(this->stamped_between(incremented->last_attempt, before));
  EXPECT_EQ(incremented->duration, std::chrono::duration_cast<std::chrono::milliseconds>(
                                       incremented->last_attempt - incremented->first_attempt));
  EXPECT_GE(incremented->duration, 100ms);
  EXPECT_FALSE(incremented->success.has_value());
  EXPECT_EQ(this->store().increment("job-1")->attempts, 3);
}

TYPED_TEST(WindowStoreConformanceTest, CloseReturnsTheWindowWithItsOutcomeAndRemovesIt) {
  const RetryWindow started = this->store().start("job-1", "settlement", kTtl);
  this->store().increment("job-1");
  this->harness.advance(100ms);
  const auto before = this->harness.now();
  const auto closed = this->store().close("job-1", false);
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->job_id, "job-1");
  EXPECT_EQ(closed->job_type, "settlement");
  EXPECT_EQ(closed->attempts, 2) << "closing is no attempt";
  EXPECT_EQ(closed->first_attempt, started.first_attempt);
  EXPECT_TRUE(this->stamped_between(closed->last_attempt, before)) << "the close's time";
  EXPECT_GE(closed->duration, 100ms);
  EXPECT_EQ(closed->success, false);
  EXPECT_FALSE(this->store().increment("job-1").has_value());
  EXPECT_FALSE(this->store().close("job-1", true).has_value());
  this->store().start("job-2", "settlement", kTtl);
  EXPECT_EQ(this->store().close("job-2", true)->success, true);
}

TYPED_TEST(WindowStoreConformanceTest, AWindowNeverStartedIsNone) {
  EXPECT_FALSE(this->store().increment("never").has_value());
  EXPECT_FALSE(this->store().close("never", true).has_value());
}

TYPED_TEST(WindowStoreConformanceTest, StartingAgainRestartsTheWindow) {
  const RetryWindow first = this->store().start("job-1", "settlement", kTtl);
  this->store().increment("job-1");
  this->harness.advance(50ms);
  const RetryWindow again = this->store().start("job-1", "refund", kTtl);
  EXPECT_EQ(again.attempts, 1);
  EXPECT_EQ(again.job_type, "refund");
  EXPECT_GT(again.first_attempt, first.first_attempt);
  const auto incremented = this->store().increment("job-1");
  ASSERT_TRUE(incremented.has_value());
  EXPECT_EQ(incremented->attempts, 2);
  EXPECT_EQ(incremented->job_type, "refund");
  EXPECT_EQ(incremented->first_attempt, again.first_attempt);
}

// A window expires `ttl` after its start: attempts do not extend it, and
// starting again does.
TYPED_TEST(WindowStoreConformanceTest, AWindowExpiresItsTtlAfterItsStart) {
  this->store().start("job-1", "settlement", 300ms);
  this->harness.advance(150ms);
  ASSERT_TRUE(this->store().increment("job-1").has_value());
  this->harness.advance(200ms);
  EXPECT_FALSE(this->store().increment("job-1").has_value()) << "the attempt extended the window";
  EXPECT_FALSE(this->store().close("job-1", true).has_value());
  this->store().start("job-2", "settlement", 300ms);
  this->harness.advance(150ms);
  this->store().start("job-2", "settlement", 300ms);
  this->harness.advance(200ms);
  EXPECT_TRUE(this->store().close("job-2", true).has_value()) << "the restart set a new ttl";
}

TYPED_TEST(WindowStoreConformanceTest, AnExpiredWindowCannotBeClosed) {
  this->store().start("job-1", "settlement", 100ms);
  this->harness.advance(150ms);
  EXPECT_FALSE(this->store().close("job-1", false).has_value());
}

TYPED_TEST(WindowStoreConformanceTest, WindowsAreKeptPerJobId) {
  this->store().start("job-1", "settlement", kTtl);
  this->store().start("job-2", "refund", kTtl);
  this->store().increment("job-1");
  EXPECT_EQ(this->store().close("job-2", true)->attempts, 1);
  EXPECT_EQ(this->store().increment("job-1")->attempts, 3);
}

// What one process starts, another advances and closes.
TYPED_TEST(WindowStoreConformanceTest, EveryStoreSharingTheWindowsSeesThem) {
  const RetryWindow started = this->store().start("job-1", "settlement", kTtl);
  const auto incremented = this->peer->increment("job-1");
  ASSERT_TRUE(incremented.has_value());
  EXPECT_EQ(incremented->attempts, 2);
  EXPECT_EQ(incremented->first_attempt, started.first_attempt);
  EXPECT_EQ(this->store().increment("job-1")->attempts, 3);
  EXPECT_EQ(this->peer->close("job-1", true)->attempts, 3);
  EXPECT_FALSE(this->store().increment("job-1").has_value());
}

// Every increment is counted once, whatever the threads (one operation each).
TYPED_TEST(WindowStoreConformanceTest, ConcurrentIncrementsAreEachCounted) {
  this->store().start("job-1", "settlement", kTtl);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      RetryWindowStore& store = t % 2 == 0 ? this->store() : *this->peer;
      for (int i = 0; i < 50; ++i) store.increment("job-1");
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(this->store().close("job-1", true)->attempts, 201);
}

}  // namespace
}  // namespace prodsafe::retry
