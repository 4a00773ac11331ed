// Test-only: the stores the randomized model checks run against, with the
// faults the model needs: every lease expiring at once (the in-memory store's
// clock jumps; Redis's records get a lease that ended), and a restart of a
// Redis with appendfsync always (what it acknowledged survives).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "prodsafe/core/clock.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/idempotency/in_memory_effect_store.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"

namespace prodsafe::testing {

// `count` seeds from 1, or PRODSAFE_MODEL_SEEDS seeds from
// PRODSAFE_MODEL_FIRST_SEED (default 1) when set.
inline std::vector<std::uint64_t> model_seeds(std::uint64_t count) {
  std::uint64_t first = 1;
  if (const char* text = std::getenv("PRODSAFE_MODEL_SEEDS"))
    count = std::strtoull(text, nullptr, 10);
  if (const char* text = std::getenv("PRODSAFE_MODEL_FIRST_SEED")) {
    first = std::strtoull(text, nullptr, 10);
  }
  std::vector<std::uint64_t> seeds;
  for (std::uint64_t i = 0; i < count; ++i) seeds.push_back(first + i);
  return seeds;
}

class ModelMemoryStore {
 public:
  static constexpr const char* kName = "memory";
  explicit ModelMemoryStore(std::uint64_t /*seed*/)
      : store_(std::make_shared<idempotency::InMemoryEffectStore>(&clock_)) {}

  idempotency::EffectStore& store() { return *store_; }
  std::shared_ptr<idempotency::EffectStore> shared() { return store_; }
  Clock* clock() { return &clock_; }
  void expire_leases(const std::vector<std::string>& /*keys*/, std::chrono::milliseconds lease) {
    clock_.advance(lease + std::chrono::milliseconds(1));
  }
  static bool can_restart() { return false; }
  void restart() {}

 private:
  ManualClock clock_;
  std::shared_ptr<idempotency::InMemoryEffectStore> store_;
};

class ModelRedisStore {
 public:
  static constexpr const char* kName = "redis";
  explicit ModelRedisStore(std::uint64_t seed) {
    if (!server_) {
      server_ = std::make_unique<embedded::RedisServer>(
          embedded::RedisServerOptions{.config = {"appendonly yes", "appendfsync always"}});
    }
    using std::chrono::milliseconds;
    client_ = std::make_shared<redis::Client>(
        server_->url(), redis::Options{.connect_timeout = milliseconds(2000),
                                       .command_timeout = milliseconds(2000),
                                       .pool_size = 4,
                                       .pool_checkout_timeout = milliseconds(5000),
                                       .reconnect_backoff_initial = milliseconds(5),
                                       .reconnect_backoff_max = milliseconds(50),
                                       .key_prefix = "model:" + std::to_string(seed) + ":" +
                                                     std::to_string(++instances_) + ":"});
    store_ = std::make_shared<idempotency::RedisEffectStore>(client_);
  }

  idempotency::EffectStore& store() { return *store_; }
  std::shared_ptr<idempotency::EffectStore> shared() { return store_; }
  Clock* clock() { return &SystemClock::instance(); }
  // Every in-progress record's lease ends now (as if the holders stalled).
  void expire_leases(const std::vector<std::string>& keys, std::chrono::milliseconds /*lease*/) {
    for (const std::string& key : keys) {
      client_->command({"EVAL",
                        "if redis.call('TYPE', KEYS[1])['ok'] == 'hash' and "
                        "redis.call('HGET', KEYS[1], 'state') == 'in_progress' then "
                        "redis.call('HSET', KEYS[1], 'lease_until', '0') end return 0",
                        "1", client_->key(key)});
    }
  }
  static bool can_restart() { return true; }
  void restart() { server_->restart(); }

 private:
  static inline std::unique_ptr<embedded::RedisServer> server_;
  static inline int instances_ = 0;
  std::shared_ptr<redis::Client> client_;
  std::shared_ptr<idempotency::RedisEffectStore> store_;
};

}  // namespace prodsafe::testing
