#include "prodsafe/core/clock.hpp"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace prodsafe {
namespace {

using namespace std::chrono_literals;

TEST(ManualClockTest, MovesOnlyWhenTold) {
  ManualClock clock;
  const auto steady = clock.steady_now();
  const auto system = clock.system_now();
  EXPECT_EQ(clock.steady_now(), steady);
  clock.advance(1500ms);
  EXPECT_EQ(clock.steady_now() - steady, 1500ms);
  EXPECT_EQ(clock.system_now() - system, 1500ms);
}

TEST(ManualClockTest, SleepAdvancesWithoutBlockingAndIsCounted) {
  ManualClock clock;
  const auto before = clock.steady_now();
  const auto wall_start = std::chrono::steady_clock::now();
  clock.sleep_for(1h);
  EXPECT_LT(std::chrono::steady_clock::now() - wall_start, 1s);
  EXPECT_EQ(clock.steady_now() - before, 1h);
  EXPECT_EQ(clock.slept(), 1h);
  EXPECT_EQ(clock.sleep_count(), 1u);
}

TEST(ManualClockTest, NegativeDurationsDoNotMoveTime) {
  ManualClock clock;
  const auto before = clock.steady_now();
  clock.advance(-5s);
  clock.sleep_for(-5s);
  EXPECT_EQ(clock.steady_now(), before);
}

TEST(ManualClockTest, WallClockCanJumpAlone) {
  ManualClock clock;
  const auto steady = clock.steady_now();
  const auto earlier = clock.system_now() - 24h;
  clock.set_system_time(earlier);
  EXPECT_EQ(clock.system_now(), earlier);
  EXPECT_EQ(clock.steady_now(), steady);
}

TEST(ManualClockTest, ConcurrentAdvancesAllCount) {
  ManualClock clock;
  const auto before = clock.steady_now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) clock.advance(1ms);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(clock.steady_now() - before, 4000ms);
}

TEST(SystemClockTest, SteadyTimeNeverGoesBackAndSleepSleeps) {
  Clock& clock = SystemClock::instance();
  const auto start = clock.steady_now();
  clock.sleep_for(5ms);
  EXPECT_GE(clock.steady_now() - start, 5ms);
}

TEST(SystemClockTest, CoarseTimeIsTheSameClockAtTickResolution) {
  Clock& clock = SystemClock::instance();
  const auto precise_before = clock.steady_now();
  const auto coarse = clock.coarse_steady_now();
  const auto precise_after = clock.steady_now();
  // Same origin: the coarse reading is at most a tick (a few ms) behind.
  EXPECT_LE(coarse, precise_after);
  EXPECT_GT(coarse, precise_before - 50ms);
  ManualClock manual;
  EXPECT_EQ(manual.coarse_steady_now(), manual.steady_now());
}

}  // namespace
}  // namespace prodsafe
