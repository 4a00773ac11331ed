// Test-only: the two EffectStore implementations behind one interface, so the
// conformance suite runs every case against both. Time passes by hand for the
// in-memory store (ManualClock) and for real for Redis (its leases use the
// server's TIME).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "prodsafe/core/clock.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/idempotency/in_memory_effect_store.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"

namespace prodsafe::testing {

// A fresh temporary directory, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "prodsafe-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class MemoryHarness {
 public:
  static constexpr const char* kName = "memory";
  MemoryHarness() : store_(std::make_shared<idempotency::InMemoryEffectStore>(&clock_)) {}

  std::shared_ptr<idempotency::EffectStore> store() { return store_; }
  void advance(std::chrono::milliseconds duration) { clock_.advance(duration); }
  Clock* clock() { return &clock_; }
  static constexpr std::chrono::milliseconds lease() { return std::chrono::milliseconds(300); }
  idempotency::WrapperOptions wrapper_options() {
    return {.journal_directory = journal_.path().string(), .clock = &clock_};
  }

 private:
  ManualClock clock_;
  std::shared_ptr<idempotency::InMemoryEffectStore> store_;
  TempDir journal_;
};

class RedisHarness {
 public:
  static constexpr const char* kName = "redis";
  RedisHarness() {
    if (!server_) server_ = std::make_unique<embedded::RedisServer>();
    if (!server_->running()) server_->restart();
    if (server_->paused()) server_->resume();
    using std::chrono::milliseconds;
    client_ = std::make_shared<redis::Client>(
        server_->url(), redis::Options{.connect_timeout = milliseconds(500),
                                       .command_timeout = milliseconds(500),
                                       .pool_size = 8,
                                       .pool_checkout_timeout = milliseconds(2000),
                                       .reconnect_backoff_initial = milliseconds(10),
                                       .reconnect_backoff_max = milliseconds(100),
                                       .key_prefix = "test:" + std::to_string(++counter_) + ":"});
    store_ = std::make_shared<idempotency::RedisEffectStore>(client_);
  }

  std::shared_ptr<idempotency::EffectStore> store() { return store_; }
  void advance(std::chrono::milliseconds duration) {
    std::this_thread::sleep_for(duration + std::chrono::milliseconds(20));
  }
  Clock* clock() { return &SystemClock::instance(); }
  static constexpr std::chrono::milliseconds lease() { return std::chrono::milliseconds(300); }
  idempotency::WrapperOptions wrapper_options() {
    return {.journal_directory = journal_.path().string()};
  }
  redis::Client& client() { return *client_; }
  static embedded::RedisServer& server() { return *server_; }

 private:
  static inline std::unique_ptr<embedded::RedisServer> server_;
  static inline int counter_ = 0;
  std::shared_ptr<redis::Client> client_;
  std::shared_ptr<idempotency::RedisEffectStore> store_;
  TempDir journal_;
};

// Polls `done` every 5 ms for up to `limit`, in real time (for what a
// background thread does on real time: journal flushes, lease renewals);
// true once it holds.
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = std::chrono::seconds(3)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// For TYPED_TEST_SUITE: every store, named "memory" and "redis" in test names.
using Harnesses = ::testing::Types<MemoryHarness, RedisHarness>;
struct HarnessNames {
  template <class T>
  static std::string GetName(int) {
    return T::kName;
  }
};

}  // namespace prodsafe::testing
