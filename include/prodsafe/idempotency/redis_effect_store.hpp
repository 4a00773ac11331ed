// Effect records in Redis: one hash per effect, operated on by single-key Lua
// scripts (one round trip each, Redis Cluster compatible), with lease time
// from the server's TIME. Keys are prefixed with the client's key_prefix.
//
// Durability (durability.hpp): claim_durably() and finish_durably() send the
// script and `WAIT replicas timeout` (or `WAITAOF 1 replicas timeout`) as one
// pipeline, so on one connection and in one round trip (on a cluster, WAIT
// goes to the key's master with the script). A claim that fewer replicas
// acknowledged is released at once (best effort: the effect has not run, so
// the release is safe, and it spares the next caller a lease's wait; if the
// release is lost too, the claim ends with its lease) and
// ReplicationShortfall is thrown. WAITAOF needs Redis 7.2: the server's
// version is read once (INFO server) and an older one is a ConfigError.
//
// Thread safety: safe for concurrent use (the client is).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "prodsafe/idempotency/effect_store.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/script.hpp"

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
  [[nodiscard]] bool waits_for_replicas() const noexcept override { return true; }
  Claim claim_durably(std::string_view key, std::string_view fingerprint,
                      std::chrono::milliseconds lease, std::chrono::milliseconds ttl,
                      const Durability& durability) override;
  FinishStatus finish_durably(std::string_view key, const Holder& holder, FinalState state,
                              std::string_view payload, std::string_view fingerprint,
                              std::chrono::milliseconds ttl, const Durability& durability) override;
  bool renew(std::string_view key, const Holder& holder, std::chrono::milliseconds lease,
             std::chrono::milliseconds ttl, std::string_view fingerprint) override;
  std::optional<EffectRecord> inspect(std::string_view key) override;
  bool clear(std::string_view key) override;
  // "redis <host>:<port> db <n> prefix <key_prefix>" (or "unix:<path>").
  [[nodiscard]] std::string identity() const override;

  [[nodiscard]] redis::Client& client() noexcept { return *client_; }

 private:
  // Runs `script` then WAIT (or WAITAOF) in one pipeline; reloads the script
  // once on NOSCRIPT. Returns the script's reply (an error reply thrown as
  // ReplyError) and how many replicas acknowledged.
  std::pair<redis::Reply, int> run_and_wait(const redis::Script& script, std::string_view key,
                                            std::span<const std::string_view> args,
                                            const Durability& durability);
  // Throws ConfigError unless the server runs Redis 7.2 or later (WAITAOF).
  void require_waitaof();

  std::shared_ptr<redis::Client> client_;
  // WAITAOF support, read once: 0 not yet known, 1 yes, -1 no.
  std::atomic<int> waitaof_{0};
  std::string server_version_{};  // written before waitaof_ becomes -1
};

}  // namespace prodsafe::idempotency
