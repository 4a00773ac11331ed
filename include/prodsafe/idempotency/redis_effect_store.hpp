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
  FinishStatus commit(std::string_view key, std::uint64_t token, std::string_view result,
                      std::string_view fingerprint, std::chrono::milliseconds ttl) override;
  FinishStatus record_failure(std::string_view key, std::uint64_t token, std::string_view error,
                              std::string_view fingerprint, std::chrono::milliseconds ttl) override;
  bool release(std::string_view key, std::uint64_t token) override;
  bool renew(std::string_view key, std::uint64_t token, std::chrono::milliseconds lease) override;
  std::optional<EffectRecord> inspect(std::string_view key) override;
  bool clear(std::string_view key) override;

  [[nodiscard]] redis::Client& client() noexcept { return *client_; }

 private:
  FinishStatus finish(std::string_view key, std::uint64_t token, std::string_view state,
                      std::string_view payload, std::string_view fingerprint,
                      std::chrono::milliseconds ttl);

  std::shared_ptr<redis::Client> client_;
};

}  // namespace prodsafe::idempotency
