// The circuit breaker's store port. Every transition is decided inside one
// store operation, so exactly one caller (across the fleet, for Redis) sees
// `transitioned == true` for it. Implementations: RedisBreakerStore (one hash
// per job type, one Lua round trip per operation, times from the server's
// clock) and InMemoryBreakerStore (one process, the injected clock).
//
// Thread safety: implementations are safe for concurrent use.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace prodsafe::breaker {

using std::chrono::milliseconds;

enum class State { kClosed, kOpen, kHalfOpen, kForcedOpen, kDisabled };

// "CLOSED", "OPEN", "HALF_OPEN", "FORCED_OPEN", "DISABLED".
[[nodiscard]] std::string_view to_string(State state) noexcept;
[[nodiscard]] std::optional<State> parse_state(std::string_view text) noexcept;

// The breaker's rules, as the store applies them.
struct BreakerRules {
  std::uint64_t failure_threshold = 10;
  milliseconds time_window = std::chrono::minutes(5);
  int window_buckets = 10;
  // Ratio mode when > 0: open when failures / calls >= failure_ratio with at
  // least minimum_throughput calls in the window.
  double failure_ratio = 0;
  std::uint64_t minimum_throughput = 20;
  milliseconds break_duration = std::chrono::seconds(30);
  double break_multiplier = 2.0;
  milliseconds max_break_duration = std::chrono::minutes(5);
  int half_open_max_probes = 1;
  milliseconds max_half_open_wait = std::chrono::seconds(30);
};

enum class Outcome { kSuccess, kFailure };

// A HALF_OPEN probe permit, as acquire() hands it out; kNoPermit (0) is none.
// Never handed out twice for one breaker (Redis: while the server's clock
// moves forward; InMemoryBreakerStore: ever).
using PermitId = std::uint64_t;
inline constexpr PermitId kNoPermit = 0;

enum class Command { kForceOpen, kForceClose, kDisable, kReset };

// The store's answer: the state after the operation and what happened.
struct Snapshot {
  State state = State::kClosed;
  State previous = State::kClosed;
  bool transitioned = false;
  // acquire(): whether the caller may make the call (and, in HALF_OPEN, holds
  // a probe permit).
  bool allowed = true;
  std::uint64_t failures = 0;   // in the current window
  std::uint64_t successes = 0;  // in the current window
  std::uint64_t trips = 0;      // consecutive openings (the break grows with them)
  // How long the breaker stays open (OPEN only).
  milliseconds retry_after{0};
  // acquire() in HALF_OPEN, when allowed: the probe permit the caller now
  // holds; report the probe's outcome with it. kNoPermit otherwise.
  PermitId permit = kNoPermit;
};

class BreakerStore {
 public:
  virtual ~BreakerStore() = default;
  // Throw StoreUnavailable (or Timeout) when the store cannot be reached, and
  // DecodeError naming the key when what is stored is not a breaker.
  //
  // record(): a call's outcome. CLOSED counts it in the window (and opens at
  // the threshold). In HALF_OPEN only the holder of a live probe permit
  // decides (success closes, failure reopens with a longer break); any other
  // outcome (a call started before the trip, a process with a stale view, a
  // permit that expired or was handed out in an earlier HALF_OPEN) is counted
  // in the window and decides nothing. OPEN after its break is HALF_OPEN
  // first; OPEN, FORCED_OPEN and DISABLED otherwise ignore outcomes.
  virtual Snapshot record(std::string_view job_type, Outcome outcome, const BreakerRules& rules,
                          PermitId permit) = 0;
  // The same, for a caller that holds no permit.
  Snapshot record(std::string_view job_type, Outcome outcome, const BreakerRules& rules) {
    return record(job_type, outcome, rules, kNoPermit);
  }
  // acquire(): whether a call may be made; in HALF_OPEN, takes one of
  // half_open_max_probes permits (each freed by its holder's outcome or after
  // max_half_open_wait) and returns it in Snapshot::permit.
  virtual Snapshot acquire(std::string_view job_type, const BreakerRules& rules) = 0;
  virtual Snapshot control(std::string_view job_type, Command command,
                           const BreakerRules& rules) = 0;
  virtual Snapshot read(std::string_view job_type, const BreakerRules& rules) = 0;
};

}  // namespace prodsafe::breaker
