// RetryWindowTracker on both stores; the Redis one shared by two clients.
#include "prodsafe/retry/retry_window_tracker.hpp"

#include <thread>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/retry/fleet_histogram.hpp"
#include "prodsafe/retry/window_stores.hpp"

namespace prodsafe::retry {
namespace {

using namespace std::chrono_literals;

TEST(InMemoryTrackerTest, WindowLifecycleWithManualClock) {
  ManualClock clock;
  RetryWindowTracker tracker(std::make_shared<InMemoryRetryWindowStore>(&clock), {.ttl = 1h});
  const RetryWindow started = tracker.start_window("job-1", "settlement");
  EXPECT_EQ(started.attempts, 1);
  EXPECT_EQ(started.job_type, "settlement");
  clock.advance(2s);
  EXPECT_EQ(tracker.increment_attempt("job-1").attempts, 2);
  clock.advance(3s);
  const RetryWindow closed = tracker.close_window("job-1", false);
  EXPECT_EQ(closed.attempts, 2);
  EXPECT_EQ(closed.duration, 5s);
  EXPECT_EQ(closed.first_attempt, started.first_attempt);
  EXPECT_EQ(closed.success, false);
  EXPECT_THROW(tracker.close_window("job-1", true), InvalidArgument) << "closed windows are gone";
}

TEST(InMemoryTrackerTest, UnknownAndExpiredJobsGetAClearError) {
  ManualClock clock;
  RetryWindowTracker tracker(std::make_shared<InMemoryRetryWindowStore>(&clock), {.ttl = 10s});
  try {
    tracker.increment_attempt("never-started");
    FAIL() << "no exception";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("never-started"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("start_window"), std::string::npos);
  }
  tracker.start_window("job-2");
  clock.advance(11s);
  EXPECT_THROW(tracker.increment_attempt("job-2"), InvalidArgument);
  EXPECT_THROW(tracker.start_window(""), InvalidArgument);
  EXPECT_THROW(tracker.start_window("a\nb"), InvalidArgument);
}

class RedisTrackerTest : public ::testing::Test {
 protected:
  embedded::RedisServer server;
  std::shared_ptr<redis::Client> first = std::make_shared<redis::Client>(server.url());
  std::shared_ptr<redis::Client> second = std::make_shared<redis::Client>(server.url());
};

TEST_F(RedisTrackerTest, WindowIsSharedBetweenTwoClients) {
  RetryWindowTracker a(std::make_shared<RedisRetryWindowStore>(first));
  RetryWindowTracker b(std::make_shared<RedisRetryWindowStore>(second));
  a.start_window("job-9", "payout");
  EXPECT_EQ(b.increment_attempt("job-9").attempts, 2);
  EXPECT_EQ(a.increment_attempt("job-9").attempts, 3);
  std::this_thread::sleep_for(20ms);
  const RetryWindow closed = b.close_window("job-9", true);
  EXPECT_EQ(closed.attempts, 3);
  EXPECT_EQ(closed.job_type, "payout");
  EXPECT_GE(closed.duration, 15ms);
  EXPECT_EQ(closed.success, true);
  EXPECT_THROW(a.increment_attempt("job-9"), InvalidArgument);
}

TEST_F(RedisTrackerTest, WindowsExpireAfterTheirTtl) {
  RetryWindowTracker tracker(std::make_shared<RedisRetryWindowStore>(first), {.ttl = 100ms});
  tracker.start_window("job-exp");
  EXPECT_GT(first->command({"PTTL", "retry:window:job-exp"}).integer(), 0);
  std::this_thread::sleep_for(150ms);
  EXPECT_THROW(tracker.increment_attempt("job-exp"), InvalidArgument);
}

TEST_F(RedisTrackerTest, GarbageUnderTheKeyIsADecodeError) {
  RetryWindowTracker tracker(std::make_shared<RedisRetryWindowStore>(first));
  first->set("retry:window:bad", "not a hash");
  try {
    tracker.increment_attempt("bad");
    FAIL() << "no exception";
  } catch (const DecodeError& error) {
    EXPECT_NE(std::string(error.what()).find("retry:window:bad"), std::string::npos)
        << error.what();
  }
}

// A full Redis (maxmemory, noeviction) was reported as a
// corrupt window, sending an operator to inspect a key that was fine.
TEST_F(RedisTrackerTest, AFullRedisIsReportedAsOutOfMemoryNotAsACorruptWindow) {
  RetryWindowTracker tracker(std::make_shared<RedisRetryWindowStore>(first));
  first->command({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
  first->command({"CONFIG", "SET", "maxmemory", "1"});
  try {
    tracker.start_window("job-oom", "settlement");
    FAIL() << "no exception";
  } catch (const DecodeError& error) {
    FAIL() << "reported as a corrupt window: " << error.what();
  } catch (const ReplyError& error) {
    EXPECT_EQ(error.prefix(), "OOM") << error.what();
  }
  first->command({"CONFIG", "SET", "maxmemory", "0"});
  EXPECT_EQ(tracker.start_window("job-oom", "settlement").attempts, 1);
}

TEST_F(RedisTrackerTest, FleetHistogramIsSharedPerJobType) {
  FleetHistogram a(first);
  FleetHistogram b(second);
  a.record("payout", 1);
  b.record("payout", 1);
  b.record("payout", 7);
  a.record("refund", 30);
  EXPECT_EQ(a.snapshot("payout").counts(), (RetryHistogram::Counts{2, 0, 0, 0, 1, 0, 0}));
  EXPECT_EQ(b.snapshot("refund").counts()[6], 1u);
  EXPECT_EQ(a.snapshot("never").total(), 0u);
  first->command({"HSET", "retry:histogram:broken", "1", "many"});
  EXPECT_THROW((void)a.snapshot("broken"), DecodeError);
  first->set("retry:histogram:string", "x");
  EXPECT_THROW((void)a.snapshot("string"), DecodeError);
}

}  // namespace
}  // namespace prodsafe::retry
