// BreakerStore on Redis: breakers the whole fleet shares (component
// prodsafe::breaker_redis).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "prodsafe/breaker/breaker_store.hpp"
#include "prodsafe/redis/client.hpp"

namespace prodsafe::breaker {

// One hash per job type under "circuit:<job_type>" (behind the client's key
// prefix), one Lua round trip per operation; every transition is published on
// "circuit:<job_type>:events" as "<STATE>:<retry_after ms>:<trips>".
// Decisions use the server's clock (TIME), so clients' clocks may disagree.
//
// watch() listens to that channel on a connection and a thread of its own
// (one each per watch); the callback runs on that thread. It returns at once
// and subscribes in the background (Subscription::listening() says when it
// is live). While Redis cannot be reached it tries again every half second;
// transitions published meanwhile are not delivered (pub/sub keeps nothing),
// so a watcher that must not miss one also reads the store now and then, as
// CircuitBreaker does after `staleness`.
// Thread safety: safe for concurrent use.
class RedisBreakerStore final : public BreakerStore {
 public:
  explicit RedisBreakerStore(std::shared_ptr<redis::Client> client);

  using BreakerStore::control;
  using BreakerStore::record;
  Snapshot record(std::string_view job_type, Outcome outcome, const BreakerRules& rules,
                  PermitId permit) override;
  Snapshot acquire(std::string_view job_type, const BreakerRules& rules) override;
  Snapshot control(std::string_view job_type, Command command, const BreakerRules& rules,
                   std::string_view actor) override;
  Snapshot read(std::string_view job_type, const BreakerRules& rules) override;
  [[nodiscard]] Subscription watch(std::string_view job_type, TransitionCallback callback) override;

  [[nodiscard]] std::string key(std::string_view job_type) const;
  [[nodiscard]] std::string channel(std::string_view job_type) const;
  [[nodiscard]] redis::Client& client() noexcept { return *client_; }

 private:
  Snapshot run(std::string_view job_type, std::string_view op, std::string_view argument,
               const BreakerRules& rules, PermitId permit, std::string_view actor = {});
  std::shared_ptr<redis::Client> client_;
};

}  // namespace prodsafe::breaker
