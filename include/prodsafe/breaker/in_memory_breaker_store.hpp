// BreakerStore in this process; needs no Redis (component prodsafe::breaker).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "prodsafe/breaker/breaker_store.hpp"
#include "prodsafe/core/clock.hpp"

namespace prodsafe::breaker {

namespace detail {
struct MemoryWatcher;  // one watch() of InMemoryBreakerStore
}

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
//
// watch() delivers the transitions made through this store (restore() makes
// none) on a thread that is making a transition through it, after its
// operation has released the store: a callback may call the store, and the
// transitions it makes are delivered after it returns. listening() is true
// until the watch is stopped.
// Thread safety: safe for concurrent use.
class InMemoryBreakerStore final : public BreakerStore {
 public:
  // `clock` must outlive the store. Default: SystemClock::instance().
  explicit InMemoryBreakerStore(Clock* clock = nullptr);

  using BreakerStore::control;
  using BreakerStore::record;
  Snapshot record(std::string_view job_type, Outcome outcome, const BreakerRules& rules,
                  PermitId permit) override;
  Snapshot acquire(std::string_view job_type, const BreakerRules& rules) override;
  Snapshot control(std::string_view job_type, Command command, const BreakerRules& rules,
                   std::string_view actor) override;
  Snapshot read(std::string_view job_type, const BreakerRules& rules) override;
  [[nodiscard]] Subscription watch(std::string_view job_type, TransitionCallback callback) override;

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
    std::string forced_by{};      // Snapshot::forced_by
    std::chrono::milliseconds forced_at{0};
  };

  using Watchers = std::vector<std::shared_ptr<detail::MemoryWatcher>>;

  Circuit& circuit(std::string_view job_type, const BreakerRules& rules);
  // The breaker moved by itself: what an operator forced no longer holds.
  static void forget_forced(Circuit& circuit, Snapshot& out);
  Snapshot snapshot(const Circuit& circuit, State previous, bool allowed, Clock::SteadyTime now,
                    std::int64_t index) const;
  // record()'s decision, on the circuit it holds the lock of.
  // `now` is the clock's time, `index` the window's current bucket.
  Snapshot decide(Circuit& circuit, State previous, Clock::SteadyTime now, std::int64_t index,
                  Outcome outcome, const BreakerRules& rules, PermitId permit) const;
  // Queues the transition `circuit` made from `previous` (if it made one)
  // for the job's watchers and delivers what is queued, unless another
  // thread is delivering. Unlocks `lock` to call back and returns it unlocked.
  void announce(std::unique_lock<std::mutex>& lock, std::string_view job_type,
                const Circuit& circuit, State previous, Clock::SteadyTime now);

  Clock& clock_;
  // Guards circuits_, last_permit_, watchers_, announced_ and delivering_.
  std::mutex mutex_;
  std::map<std::string, Circuit, std::less<>> circuits_;
  PermitId last_permit_ = kNoPermit;  // permits are numbered from 1, never reused
  std::map<std::string, Watchers, std::less<>> watchers_;
  // Transitions made and not yet delivered, in the order they were made.
  std::deque<std::pair<std::string, Transition>> announced_;
  bool delivering_ = false;  // a thread is delivering announced_
};

}  // namespace prodsafe::breaker
