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
// "circuit:<job_type>:events" with the new state's name. Decisions use the
// server's clock (TIME), so clients' clocks may disagree.
// Thread safety: safe for concurrent use.
class RedisBreakerStore final : public BreakerStore {
 public:
  explicit RedisBreakerStore(std::shared_ptr<redis::Client> client);

  using BreakerStore::record;
  Snapshot record(std::string_view job_type, Outcome outcome, const BreakerRules& rules,
                  PermitId permit) override;
  Snapshot acquire(std::string_view job_type, const BreakerRules& rules) override;
  Snapshot control(std::string_view job_type, Command command, const BreakerRules& rules) override;
  Snapshot read(std::string_view job_type, const BreakerRules& rules) override;

  [[nodiscard]] std::string key(std::string_view job_type) const;
  [[nodiscard]] std::string channel(std::string_view job_type) const;
  [[nodiscard]] redis::Client& client() noexcept { return *client_; }

 private:
  Snapshot run(std::string_view job_type, std::string_view op, std::string_view argument,
               const BreakerRules& rules, PermitId permit);
  std::shared_ptr<redis::Client> client_;
};

// A circuit as another store last showed it, for InMemoryBreakerStore::restore().
struct CircuitImage {
  State state = State::kClosed;
  std::uint64_t trips = 0;
  // OPEN: how long its break still lasts.
  milliseconds open_for{0};
  // HALF_OPEN: probe permits already out, and how long each stays held; they
  // take probe slots (at most half_open_max_probes) and their outcome decides.
  struct Probe {
    PermitId id = kNoPermit;
    milliseconds held_for{0};
  };
  std::vector<Probe> probes{};
};

// Breakers of one process, with the injected clock. Same rules as Redis.
// Thread safety: safe for concurrent use.
class InMemoryBreakerStore final : public BreakerStore {
 public:
  // `clock` must outlive the store. Default: SystemClock::instance().
  explicit InMemoryBreakerStore(Clock* clock = nullptr);

  using BreakerStore::record;
  Snapshot record(std::string_view job_type, Outcome outcome, const BreakerRules& rules,
                  PermitId permit) override;
  Snapshot acquire(std::string_view job_type, const BreakerRules& rules) override;
  Snapshot control(std::string_view job_type, Command command, const BreakerRules& rules) override;
  Snapshot read(std::string_view job_type, const BreakerRules& rules) override;

  // Replaces `job_type`'s circuit with `image`, its window empty. A
  // CircuitBreaker starts its local view from the fleet's state with it.
  void restore(std::string_view job_type, const CircuitImage& image, const BreakerRules& rules);

 private:
  struct Bucket {
    std::int64_t index = -1;
    std::uint64_t failures = 0;
    std::uint64_t successes = 0;
  };
  struct Permit {
    Clock::SteadyTime frees{};  // free from then on
    PermitId id = kNoPermit;
  };
  struct Circuit {
    State state = State::kClosed;
    std::uint64_t trips = 0;
    Clock::SteadyTime open_until{};
    std::vector<Bucket> buckets;
    std::vector<Permit> permits;  // the probe permits' slots
  };

  Circuit& circuit(std::string_view job_type, const BreakerRules& rules);
  Snapshot snapshot(const Circuit& circuit, State previous, bool allowed, Clock::SteadyTime now,
                    std::int64_t index) const;

  Clock& clock_;
  std::mutex mutex_;  // guards circuits_ and last_permit_
  std::map<std::string, Circuit, std::less<>> circuits_;
  PermitId last_permit_ = kNoPermit;  // permits are numbered from 1, never reused
};

}  // namespace prodsafe::breaker
