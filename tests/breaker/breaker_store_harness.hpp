// Test-only: the two BreakerStore implementations behind one interface, so the
// conformance suite runs every case against both. Time passes by hand for the
// in-memory store (ManualClock) and for real for Redis (its breaks and permits
// use the server's TIME).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "print_state.hpp"
#include "prodsafe/breaker/breaker_stores.hpp"
#include "prodsafe/core/clock.hpp"
#include "prodsafe/embedded/redis_server.hpp"

namespace prodsafe::testing {

class MemoryBreakerHarness {
 public:
  static constexpr const char* kName = "memory";
  MemoryBreakerHarness() : store_(std::make_shared<breaker::InMemoryBreakerStore>(&clock_)) {}

  std::shared_ptr<breaker::BreakerStore> store() { return store_; }
  // Another store sharing the state: for this one, the store itself.
  std::shared_ptr<breaker::BreakerStore> peer() { return store_; }
  void advance(std::chrono::milliseconds duration) { clock_.advance(duration); }
  // The wall clock the store reads.
  std::chrono::system_clock::time_point system_now() const { return clock_.system_now(); }
  // Deliveries happen on the thread making the transition: nothing to wait for.
  bool await(const std::function<bool()>& condition) { return condition(); }
  void settle() {}

 private:
  ManualClock clock_;
  std::shared_ptr<breaker::InMemoryBreakerStore> store_;
};

class RedisBreakerHarness {
 public:
  static constexpr const char* kName = "redis";
  RedisBreakerHarness() {
    if (!server_) server_ = std::make_unique<embedded::RedisServer>();
    if (!server_->running()) server_->restart();
    if (server_->paused()) server_->resume();
    prefix_ = "test:" + std::to_string(++counter_) + ":";
    store_ = make_store();
  }

  std::shared_ptr<breaker::BreakerStore> store() { return store_; }
  // Another client on the same keys, as another process would have.
  std::shared_ptr<breaker::BreakerStore> peer() { return make_store(); }
  // Deliveries arrive on the watcher's thread: wait for them, with a bound.
  bool await(const std::function<bool()>& condition) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline) {
      if (condition()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return condition();
  }
  // Long enough for a message that was going to arrive to have arrived.
  void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(200)); }
  // The server's clock moves by itself: wait, with a margin.
  void advance(std::chrono::milliseconds duration) {
    std::this_thread::sleep_for(duration + std::chrono::milliseconds(20));
  }
  // The wall clock the store reads: the server's, on this machine.
  std::chrono::system_clock::time_point system_now() const {
    return std::chrono::system_clock::now();
  }

 private:
  static inline std::unique_ptr<embedded::RedisServer> server_;
  std::shared_ptr<breaker::RedisBreakerStore> make_store() const {
    using std::chrono::milliseconds;
    return std::make_shared<breaker::RedisBreakerStore>(std::make_shared<redis::Client>(
        server_->url(), redis::Options{.connect_timeout = milliseconds(500),
                                       .command_timeout = milliseconds(500),
                                       .reconnect_backoff_initial = milliseconds(10),
                                       .reconnect_backoff_max = milliseconds(100),
                                       .key_prefix = prefix_}));
  }

  static inline int counter_ = 0;
  std::string prefix_;
  std::shared_ptr<breaker::RedisBreakerStore> store_;
};

// For TYPED_TEST_SUITE: every store, named "memory" and "redis" in test names.
using BreakerHarnesses = ::testing::Types<MemoryBreakerHarness, RedisBreakerHarness>;
struct BreakerHarnessNames {
  template <class T>
  static std::string GetName(int) {
    return T::kName;
  }
};

inline constexpr std::string_view kJob = "exchange";
// Short, so that the Redis run waits little, yet long enough that a stalled
// test (two busy cores) does not see a break or a permit end before it looks.
inline constexpr auto kBreak =
    std::chrono::milliseconds(300);  // the first break; the second is twice as long
inline constexpr auto kProbeWait = std::chrono::milliseconds(1000);  // max_half_open_wait

// The conformance suites' fixture: one harness and its store.
template <class Harness>
class BreakerStoreFixture : public ::testing::Test {
 protected:
  Harness harness;
  breaker::BreakerStore& store() { return *store_; }

  static breaker::BreakerRules rules(int probes = 1) {
    breaker::BreakerRules rules;
    rules.failure_threshold = 2;
    rules.break_duration = kBreak;
    rules.break_multiplier = 2.0;
    rules.max_break_duration = 10 * kBreak;
    rules.half_open_max_probes = probes;
    rules.max_half_open_wait = kProbeWait;
    return rules;
  }
  // Opens the breaker (its first trip) and waits out the break.
  void trip_and_wait(const breaker::BreakerRules& rules) {
    store().record(kJob, breaker::Outcome::kFailure, rules);
    ASSERT_EQ(store().record(kJob, breaker::Outcome::kFailure, rules).state, breaker::State::kOpen);
    harness.advance(rules.break_duration);
  }
  breaker::Snapshot record(breaker::Outcome outcome, const breaker::BreakerRules& rules,
                           breaker::PermitId permit = breaker::kNoPermit) {
    return store().record(kJob, outcome, rules, permit);
  }
  // A probe permit in HALF_OPEN.
  breaker::PermitId probe(const breaker::BreakerRules& rules) {
    const breaker::Snapshot granted = store().acquire(kJob, rules);
    EXPECT_TRUE(granted.allowed);
    EXPECT_EQ(granted.state, breaker::State::kHalfOpen);
    EXPECT_NE(granted.permit, breaker::kNoPermit);
    return granted.permit;
  }

 private:
  std::shared_ptr<breaker::BreakerStore> store_ = harness.store();
};

}  // namespace prodsafe::testing
