// Test-only: the two RetryWindowStore implementations behind one interface, so
// the conformance suite runs every case against both. Time passes by hand for
// the in-memory store (ManualClock) and for real for Redis (its windows use
// the server's TIME and its key expiry).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "prodsafe/core/clock.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/retry/window_stores.hpp"

namespace prodsafe::testing {

class MemoryWindowHarness {
 public:
  static constexpr const char* kName = "memory";
  MemoryWindowHarness() : store_(std::make_shared<retry::InMemoryRetryWindowStore>(&clock_)) {}

  std::shared_ptr<retry::RetryWindowStore> store() { return store_; }
  // Another store sharing the windows: for this one, the store itself.
  std::shared_ptr<retry::RetryWindowStore> peer() { return store_; }
  void advance(std::chrono::milliseconds duration) { clock_.advance(duration); }
  // The time the store stamps windows with, and how far a stamp may be from it.
  std::chrono::system_clock::time_point now() const { return clock_.system_now(); }
  static constexpr std::chrono::milliseconds kStampError{0};

 private:
  ManualClock clock_;
  std::shared_ptr<retry::InMemoryRetryWindowStore> store_;
};

class RedisWindowHarness {
 public:
  static constexpr const char* kName = "redis";
  RedisWindowHarness() {
    if (!server_) server_ = std::make_unique<embedded::RedisServer>();
    prefix_ = "test:" + std::to_string(++counter_) + ":";
    store_ = make_store();
  }

  std::shared_ptr<retry::RetryWindowStore> store() { return store_; }
  // Another client on the same keys, as another process would have.
  std::shared_ptr<retry::RetryWindowStore> peer() { return make_store(); }
  // The server's clock moves by itself: wait, with a margin.
  void advance(std::chrono::milliseconds duration) {
    std::this_thread::sleep_for(duration + std::chrono::milliseconds(20));
  }
  // The server's TIME, in whole milliseconds, on this machine's clock.
  std::chrono::system_clock::time_point now() const { return std::chrono::system_clock::now(); }
  static constexpr std::chrono::milliseconds kStampError{2};

 private:
  std::shared_ptr<retry::RedisRetryWindowStore> make_store() const {
    using std::chrono::milliseconds;
    return std::make_shared<retry::RedisRetryWindowStore>(std::make_shared<redis::Client>(
        server_->url(), redis::Options{.connect_timeout = milliseconds(500),
                                       .command_timeout = milliseconds(500),
                                       .key_prefix = prefix_}));
  }

  static inline std::unique_ptr<embedded::RedisServer> server_;
  static inline int counter_ = 0;
  std::string prefix_;
  std::shared_ptr<retry::RedisRetryWindowStore> store_;
};

// For TYPED_TEST_SUITE: every store, named "memory" and "redis" in test names.
using WindowHarnesses = ::testing::Types<MemoryWindowHarness, RedisWindowHarness>;
struct WindowHarnessNames {
  template <class T>
  static std::string GetName(int) {
    return T::kName;
  }
};

}  // namespace prodsafe::testing
