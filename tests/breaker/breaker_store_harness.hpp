// Test-only: the two BreakerStore implementations behind one interface, so the
// conformance suite runs every case against both. Time passes by hand for the
// in-memory store (ManualClock) and for real for Redis (its breaks and permits
// use the server's TIME).
#pragma once

#include <chrono>
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
  void advance(std::chrono::milliseconds duration) { clock_.advance(duration); }

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
    using std::chrono::milliseconds;
    store_ = std::make_shared<breaker::RedisBreakerStore>(std::make_shared<redis::Client>(
        server_->url(), redis::Options{.connect_timeout = milliseconds(500),
                                       .command_timeout = milliseconds(500),
                                       .reconnect_backoff_initial = milliseconds(10),
                                       .reconnect_backoff_max = milliseconds(100),
                                       .key_prefix = "test:" + std::to_string(++counter_) + ":"}));
  }

  std::shared_ptr<breaker::BreakerStore> store() { return store_; }
  // The server's clock moves by itself: wait, with a margin.
  void advance(std::chrono::milliseconds duration) {
    std::this_thread::sleep_for(duration + std::chrono::milliseconds(20));
  }

 private:
  static inline std::unique_ptr<embedded::RedisServer> server_;
  static inline int counter_ = 0;
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

}  // namespace prodsafe::testing
