// The circuit breaker's store port. Every transition is decided inside one
// store operation, so exactly one caller (across the fleet, for Redis) sees
// `transitioned == true` for it. Implementations: RedisBreakerStore (one hash
// per job type, one Lua round trip per operation, times from the server's
// clock) and InMemoryBreakerStore (one process, the injected clock). Every
// transition is also announced to the store's watchers (watch()).
//
// Thread safety: implementations are safe for concurrent use.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace prodsafe::breaker {

using std::chrono::milliseconds;

enum class State { kClosed, kOpen, kHalfOpen, kForcedOpen, kDisabled };

// "CLOSED", "OPEN", "HALF_OPEN", "FORCED_OPEN", "DISABLED".
[[nodiscard]] std::string_view to_string(State state) noexcept;
[[nodiscard]] std::optional<State> parse_state(std::string_view text) noexcept;

// The breaker's rules, as the store applies them. These defaults are the
// defaults of CircuitBreakerOptions too (CircuitBreakerOptions::rules()).
struct BreakerRules {
  // Failures in the window that open the breaker (count mode). Default: 10.
  std::uint64_t failure_threshold = 10;
  // The window outcomes are counted over. Default: 5 minutes.
  milliseconds time_window = std::chrono::minutes(5);
  // The window is kept as this many buckets; an outcome leaves the window
  // with its bucket. Default: 10.
  int window_buckets = 10;
  // Ratio mode when > 0: open when failures / calls >= failure_ratio with at
  // least minimum_throughput calls in the window. Default: 0 (count mode).
  double failure_ratio = 0;
  // Default: 20.
  std::uint64_t minimum_throughput = 20;
  // The first break; each consecutive trip multiplies it by
  // break_multiplier, up to max_break_duration. Default: 30 s.
  milliseconds break_duration = std::chrono::seconds(30);
  // Default: 2.0.
  double break_multiplier = 2.0;
  // Default: 5 minutes.
  milliseconds max_break_duration = std::chrono::minutes(5);
  // Probe permits handed out at once in HALF_OPEN. Default: 1.
  int half_open_max_probes = 1;
  // A probe that has not reported by then frees its permit. Default: 30 s.
  milliseconds max_half_open_wait = std::chrono::seconds(30);
};

enum class Outcome { kSuccess, kFailure };

// The longest control() actor accepted.
inline constexpr std::size_t kMaxActorBytes = 256;

// Throws InvalidArgument when `actor` is longer than kMaxActorBytes. The
// stores call it.
void check_actor(std::string_view actor);

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
  // a probe permit). Always true from record(), control() and read().
  bool allowed = true;
  std::uint64_t failures = 0;   // in the current window
  std::uint64_t successes = 0;  // in the current window
  std::uint64_t trips = 0;      // consecutive openings (the break grows with them)
  // How long the breaker stays open (OPEN only).
  milliseconds retry_after{0};
  // acquire() in HALF_OPEN, when allowed: the probe permit the caller now
  // holds; report the probe's outcome with it. kNoPermit otherwise.
  PermitId permit = kNoPermit;
  // Who forced the breaker's state (control()'s actor) and when (wall
  // clock, milliseconds since the epoch; Redis: the server's clock), while
  // what was forced holds: from a force_open, force_close or disable until a
  // reset or the breaker's own next transition (a forced close that trips).
  // Empty and 0 otherwise, or when the actor was empty.
  std::string forced_by{};
  milliseconds forced_at{0};
};

// A transition as the store announces it to watch()'s callback.
struct Transition {
  // The state entered.
  State state = State::kClosed;
  // OPEN: how long its break lasts from the transition; 0 otherwise.
  milliseconds retry_after{0};
  // Consecutive openings after the transition (0 after CLOSED). nullopt when
  // the store did not say: a Redis message published by a breaker script
  // older than this field.
  std::optional<std::uint64_t> trips{};
};

// A watch on a circuit's transitions (BreakerStore::watch()). It ends when
// stop() is called or the Subscription is destroyed; moving it moves the
// watch. Does not refer to the store: it may outlive it.
// Thread safety: stop() and listening() may be called from any thread, but
// not concurrently on one Subscription.
class Subscription {
 public:
  // What a store implements: how to stop its watch, and whether it is live.
  class Handle {
   public:
    virtual ~Handle() = default;
    // Stops the watch. Once it returns the callback is not running (except
    // when stop() is called from the callback itself) and is not called again.
    virtual void stop() noexcept = 0;
    [[nodiscard]] virtual bool listening() const noexcept = 0;
  };

  Subscription() = default;
  explicit Subscription(std::unique_ptr<Handle> handle) noexcept : handle_(std::move(handle)) {}
  Subscription(Subscription&&) noexcept = default;
  Subscription& operator=(Subscription&& other) noexcept {
    if (this != &other) {
      stop();
      handle_ = std::move(other.handle_);
    }
    return *this;
  }
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription() { stop(); }

  // Stops watching: see Handle::stop(). Does nothing when already stopped.
  void stop() noexcept {
    if (handle_) {
      handle_->stop();
      handle_.reset();
    }
  }
  // Whether a transition made now would be delivered: false once stopped,
  // and (Redis) while the watch is not (yet, or any longer) subscribed.
  [[nodiscard]] bool listening() const noexcept { return handle_ && handle_->listening(); }

 private:
  std::unique_ptr<Handle> handle_;
};

using TransitionCallback = std::function<void(const Transition&)>;

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
  // control(): an operator's command. `actor` (any bytes, at most
  // kMaxActorBytes; empty for none) is recorded as Snapshot::forced_by by
  // force_open, force_close and disable, and cleared by reset. Throws
  // InvalidArgument for a longer actor, before anything changes.
  virtual Snapshot control(std::string_view job_type, Command command, const BreakerRules& rules,
                           std::string_view actor) = 0;
  // The same, naming no actor.
  Snapshot control(std::string_view job_type, Command command, const BreakerRules& rules) {
    return control(job_type, command, rules, {});
  }
  virtual Snapshot read(std::string_view job_type, const BreakerRules& rules) = 0;

  // Calls `callback` with each transition of `job_type`'s circuit made by any
  // caller sharing this store's state (this process or, for Redis, any
  // other) until the Subscription is stopped. Callbacks of one watch run one
  // at a time, in the order the transitions were made; an exception from one
  // is logged and dropped. Never throws StoreUnavailable: see each
  // implementation for which thread calls back and what happens while the
  // store is unreachable.
  [[nodiscard]] virtual Subscription watch(std::string_view job_type,
                                           TransitionCallback callback) = 0;
};

}  // namespace prodsafe::breaker
