// The two BreakerStore implementations.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "prodsafe/breaker/breaker_store.hpp"
#include "prodsafe/core/clock.hpp"
#include "prodsafe/redis/client.hpp"

namespace prodsafe::breaker {

// One hash per job type under "circuit:<job_type>" (behind the client's key
// prefix), one Lua round trip per operation; every transition is published on
// "circuit:<job_type>:events" with the new state's name.
// Thread safety: safe for concurrent use.
class RedisBreakerStore final : public BreakerStore {
 public:
  explicit RedisBreakerStore(std::shared_ptr<redis::Client> client);

  Snapshot record(std::string_view job_type, Outcome outcome, const BreakerRules& rules) override;
  Snapshot acquire(std::string_view job_type, const BreakerRules& rules) override;
  Snapshot control(std::string_view job_type, Command command, const BreakerRules& rules) override;
  Snapshot read(std::string_view job_type, const BreakerRules& rules) override;

  [[nodiscard]] std::string key(std::string_view job_type) const;
  [[nodiscard]] std::string channel(std::string_view job_type) const;
  [[nodiscard]] redis::Client& client() noexcept { return *client_; }

 private:
  Snapshot run(std::string_view job_type, std::string_view op, std::string_view argument,
               const BreakerRules& rules);
  std::shared_ptr<redis::Client> client_;
};

// Breakers of one process, with the injected clock. Same rules as Redis.
// Thread safety: safe for concurrent use.
class InMemoryBreakerStore final : public BreakerStore {
 public:
  // `clock` must outlive the store. Default: SystemClock::instance().
  explicit InMemoryBreakerStore(Clock* clock = nullptr);

  Snapshot record(std::string_view job_type, Outcome outcome, const BreakerRules& rules) override;
  Snapshot acquire(std::string_view job_type, const BreakerRules& rules) override;
  Snapshot control(std::string_view job_type, Command command, const BreakerRules& rules) override;
  Snapshot read(std::string_view job_type, const BreakerRules& rules) override;

 private:
  struct Bucket {
    std::int64_t index = -1;
    std::uint64_t failures = 0;
    std::uint64_t successes = 0;
  };
  struct Circuit {
    State state = State::kClosed;
    std::uint64_t trips = 0;
    Clock::SteadyTime open_until{};
    std::vector<Bucket> buckets;
    std::vector<Clock::SteadyTime> permits;  // when each probe permit frees
  };

  Circuit& circuit(std::string_view job_type, const BreakerRules& rules);
  Snapshot snapshot(const Circuit& circuit, State previous, bool allowed, Clock::SteadyTime now,
                    std::int64_t index) const;

  Clock& clock_;
  std::mutex mutex_;
  std::map<std::string, Circuit, std::less<>> circuits_;
};

}  // namespace prodsafe::breaker
