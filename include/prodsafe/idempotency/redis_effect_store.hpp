// Effect records in Redis: one hash per effect, operated on by single-key Lua
// scripts (one round trip each, Redis Cluster compatible), with lease time
// from the server's TIME. Keys are prefixed with the client's key_prefix.
//
// Thread safety: safe for concurrent use (the client is).
#pragma once

#include <memory>

#include "prodsafe/idempotency/effect_store.hpp"
#include "prodsafe/redis/client.hpp"

namespace prodsafe::idempotency {

class RedisEffectStore final : public EffectStore {
 public:
  explicit RedisEffectStore(std::shared_ptr<redis::Client> client);

  Claim claim(std::string_view key, std::string_view fingerprint, std::chrono::milliseconds lease,
              std::chrono::milliseconds ttl) override;
  FinishStatus finish(std::string_view key, const Holder& holder, FinalState state,
                      std::string_view payload, std::string_view fingerprint,
                      std::chrono::milliseconds ttl) override;
  bool release(std::string_view key, const Holder& holder) override;
  bool renew(std::string_view key, const Holder& holder, std::chrono::milliseconds lease,
             std::chrono::milliseconds ttl, std::string_view fingerprint) override;
  std::optional<EffectRecord> inspect(std::string_view key) override;
  bool clear(std::string_view key) override;
  // "redis <host>:<port> db <n> prefix <key_prefix>" (or "unix:<path>").
  [[nodiscard]] std::string identity() const override;

  [[nodiscard]] redis::Client& client() noexcept { return *client_; }

 private:
  std::shared_ptr<redis::Client> client_;
};

}  // namespace prodsafe::idempotency
