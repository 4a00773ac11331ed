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
};

class BreakerStore {
 public:
  virtual ~BreakerStore() = default;
  // Throw StoreUnavailable (or Timeout) when the store cannot be reached, and
  // DecodeError naming the key when what is stored is not a breaker.
  virtual Snapshot record(std::string_view job_type, Outcome outcome,
                          const BreakerRules& rules) = 0;
  virtual Snapshot acquire(std::string_view job_type, const BreakerRules& rules) = 0;
  virtual Snapshot control(std::string_view job_type, Command command,
                           const BreakerRules& rules) = 0;
  virtual Snapshot read(std::string_view job_type, const BreakerRules& rules) = 0;
};

}  // namespace prodsafe::breaker
