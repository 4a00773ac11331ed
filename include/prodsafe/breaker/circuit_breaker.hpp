// A circuit breaker the whole fleet shares (the seed's CircuitBreaker, with
// automatic recovery and alert hooks).
//
//   auto store = std::make_shared<RedisBreakerStore>(client);
//   CircuitBreaker breaker(store, "exchange", {.failure_threshold = 10, .alert_hooks = hooks});
//   if (!breaker.can_retry().allowed) return;       // the seed's can_retry()[0]
//   try { call(); breaker.record_success(); } catch (...) { breaker.record_failure(); throw; }
//
// State lives in the store: failures recorded by one process open the
// breaker for all. Each transition is decided inside one store operation, so
// exactly one process sees it and fires the alert hooks: one alert per
// fleet-wide transition. CLOSED → OPEN at the threshold (count, or ratio with
// a minimum throughput, over a bucketed window); OPEN → HALF_OPEN after the
// break (which grows with each consecutive trip, up to a cap); a probe success
// closes, a probe failure reopens; a probe that never reports frees its
// permit after max_half_open_wait.
//
// Probes: in HALF_OPEN, can_retry() hands at most half_open_max_probes calls
// fleet-wide a probe permit (Permission::permit), and only a probe's outcome
// decides. Outcomes recorded without a live permit (a call that began before
// the trip, a process whose view was still CLOSED, a probe past
// max_half_open_wait) decide nothing; the store counts them in its window.
// record_success() and record_failure() report the permit that can_retry()
// last granted on the calling thread (whichever call the outcome is for), so
// the usual "ask, call, record" on one thread needs nothing more; when the
// outcome is recorded on another thread, pass the Permission.
//
// can_retry() in CLOSED answers from this process's view without a round
// trip. Other breakers' transitions arrive by watching the store
// (BreakerStore::watch: Redis pub/sub, or the in-memory store's callbacks);
// the view is also refreshed when older than `staleness`. When the store is
// unreachable the breaker keeps deciding on a local view (an in-memory
// breaker with the same rules) that starts from the fleet's state as this
// process last saw it:
// FORCED_OPEN and DISABLED hold, OPEN keeps the rest of its break, HALF_OPEN
// its probe limit (the probes this process holds take their slots and still
// decide). It fires a circuit_store_unavailable alert once per outage, and
// circuit_store_available (kCircuitStoreAvailable) when the store answers
// again and the fleet's state applies; it never throws from can_retry(),
// record_success() or record_failure().
//
// Thread safety: safe for concurrent use.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "prodsafe/alerts/alert_hooks.hpp"
#include "prodsafe/breaker/breaker_store.hpp"
#include "prodsafe/core/clock.hpp"
#include "prodsafe/tracing/tracer.hpp"

namespace prodsafe::metrics {
class Registry;
}

namespace prodsafe::breaker {

class InMemoryBreakerStore;

// The event fired once when the store answers again after an outage: the
// fleet's state (AlertContext::state) applies again, and what this process
// decided and alerted from its local view (AlertContext::previous_state is
// that view's state) is over.
inline constexpr std::string_view kCircuitStoreAvailable = alerts::kCircuitStoreAvailable;

// The store's rules (BreakerRules, which owns their defaults and documents
// each) and the breaker's own options.
struct CircuitBreakerOptions {
  // Failures in the window that open the breaker (count mode). Default: 10.
  std::uint64_t failure_threshold = BreakerRules{}.failure_threshold;
  // The window outcomes are counted over. Default: 5 minutes.
  milliseconds time_window = BreakerRules{}.time_window;
  // Buckets the window is kept as. Default: 10.
  int window_buckets = BreakerRules{}.window_buckets;
  // Ratio mode when > 0: open when failures / calls reaches it with at least
  // minimum_throughput calls in the window. Default: 0 (count mode).
  double failure_ratio = BreakerRules{}.failure_ratio;
  // Default: 20.
  std::uint64_t minimum_throughput = BreakerRules{}.minimum_throughput;
  // The first break; each consecutive trip multiplies it by break_multiplier,
  // up to max_break_duration. Default: 30 s.
  milliseconds break_duration = BreakerRules{}.break_duration;
  // Default: 2.0.
  double break_multiplier = BreakerRules{}.break_multiplier;
  // Default: 5 minutes.
  milliseconds max_break_duration = BreakerRules{}.max_break_duration;
  // Calls let through at once in HALF_OPEN. Default: 1.
  int half_open_max_probes = BreakerRules{}.half_open_max_probes;
  // A probe that has not reported by then frees its permit. Default: 30 s.
  milliseconds max_half_open_wait = BreakerRules{}.max_half_open_wait;
  // How old this process's view of a CLOSED breaker may get before it asks
  // the store again (watching usually updates it sooner). Default: 1 s.
  milliseconds staleness = std::chrono::seconds(1);
  // Watch the store for transitions other breakers make (BreakerStore::watch;
  // for Redis, one connection and thread per breaker). Default: true.
  bool subscribe = true;
  // Called on every transition this process decides. Default: none.
  std::shared_ptr<alerts::AlertHooks> alert_hooks{};
  // Default: SystemClock::instance(). Must outlive the breaker.
  Clock* clock = nullptr;
  // Where the breaker's instruments go (docs/metrics.md). Default: nullptr,
  // metrics::default_registry(). Must outlive the breaker.
  metrics::Registry* metrics = nullptr;

  // The rules the store applies: this struct's fields that BreakerRules has.
  [[nodiscard]] BreakerRules rules() const noexcept;
};

struct Permission {
  bool allowed = true;
  std::string reason{};  // why not, when not allowed
  State state = State::kClosed;
  milliseconds retry_after{0};
  // The HALF_OPEN probe permit this call holds (kNoPermit: none): pass the
  // Permission to record_success()/record_failure() when recording the
  // outcome on another thread than the one that asked.
  PermitId permit = kNoPermit;
};

class CircuitBreaker {
 public:
  // Throws InvalidArgument for a null store, an invalid job type (empty, ':'
  // or control characters) or an option out of its range, naming the field:
  // every duration more than 0 and at most 24 h, max_break_duration at least
  // break_duration, break_multiplier finite and >= 1, failure_ratio in
  // [0, 1], failure_threshold >= 1, window_buckets 1 to 1000,
  // half_open_max_probes 1 to 100.
  CircuitBreaker(std::shared_ptr<BreakerStore> store, std::string job_type,
                 CircuitBreakerOptions options = {});
  ~CircuitBreaker();
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // Whether a call (or a retry) may be made now. Never throws.
  [[nodiscard]] Permission can_retry() noexcept;
  // can_retry(), with the decision recorded on `span` (the caller's, e.g.
  // an execute_once or retry span) as an event "prodsafe.breaker.decision"
  // with prodsafe.breaker.job_type, .allowed, .state and .reason.
  [[nodiscard]] Permission can_retry(tracing::Span& span) noexcept;
  // Record the outcome of a call; with the probe permit can_retry() last
  // granted on this thread, if it has one (the permit is used up). Never throw.
  void record_success() noexcept;
  void record_failure() noexcept;
  // Record the outcome of the call `permission` let through, from any thread,
  // with its permit (and no other). Never throw.
  void record_success(const Permission& permission) noexcept;
  void record_failure(const Permission& permission) noexcept;
  // The state as the store has it (one round trip), or this process's view
  // when the store is unreachable.
  [[nodiscard]] State state() noexcept;

  // Manual control, fleet-wide. They throw StoreUnavailable when the store
  // is unreachable: an operator must know the command did not land, and
  // InvalidArgument for an actor longer than breaker::kMaxActorBytes. The
  // store records who forced the state (Snapshot::forced_by, shown by
  // `prodsafe breaker list` and the dashboard): `actor`, or this process's
  // "host:pid" (alerts::this_instance()) when empty.
  void force_open(std::string_view actor = {});
  void force_close(std::string_view actor = {});
  void disable(std::string_view actor = {});
  void reset();

  // For RetryPolicy::allow_retry: [breaker] { return breaker.can_retry().allowed; }
  [[nodiscard]] std::function<bool()> gate();

  [[nodiscard]] const std::string& job_type() const noexcept { return job_type_; }
  // Store operations made (can_retry fast paths make none).
  [[nodiscard]] std::uint64_t store_operations() const noexcept { return store_operations_.load(); }
  [[nodiscard]] bool store_unavailable() const noexcept { return store_down_.load(); }

 private:
  // Runs `operation` on the store, or on the local view when the store fails
  // (then sets *decided_locally, if given).
  template <class Operation>
  Snapshot apply(Operation&& operation, bool throw_when_down, bool* decided_locally = nullptr);
  [[nodiscard]] Permission decide() noexcept;
  // force_open(), force_close(), disable().
  void force(Command command, std::string_view actor);
  void record(Outcome outcome, PermitId permit) noexcept;
  void hold_permit(PermitId permit, bool from_store);
  [[nodiscard]] PermitId this_threads_permit();
  void forget_permit(PermitId permit);
  void adopt(const Snapshot& snapshot);
  void remember_fleet(const Snapshot& snapshot, std::int64_t now);
  void start_local_view(std::int64_t now);
  void alert_store_unavailable(std::string_view reason);
  void alert_store_available(State fleet, State local, std::int64_t outage_ns);
  void announce(const Snapshot& snapshot, std::string_view cause);
  void on_transition(const Transition& transition);
  [[nodiscard]] std::int64_t now_ns() const;

  std::shared_ptr<BreakerStore> store_;
  std::string job_type_;
  CircuitBreakerOptions options_;
  BreakerRules rules_;
  Clock& clock_;
  // The local view; by pointer, so that this header needs only the port.
  std::unique_ptr<InMemoryBreakerStore> fallback_;

  std::atomic<State> local_state_{State::kClosed};
  std::atomic<std::int64_t> synced_at_ns_{0};
  std::atomic<std::int64_t> open_until_ns_{0};
  std::atomic<bool> refreshing_{false};
  // Probe permits can_retry() granted, by thread, until recorded. Bounded:
  // expired ones are dropped, and at most kMaxHeldPermits are kept.
  struct HeldPermit {
    std::thread::id thread;
    PermitId id = kNoPermit;
    std::int64_t frees_ns = 0;  // max_half_open_wait after it was granted
    bool from_store = false;    // false: granted by the local view
  };
  static constexpr std::size_t kMaxHeldPermits = 256;
  // Guards held_permits_; permits_held_ is written under it.
  std::mutex permits_mutex_;
  std::vector<HeldPermit> held_permits_;
  std::atomic<std::size_t> permits_held_{0};  // held_permits_.size(), read without the lock
  // The fleet's state as this process last saw it (store replies, watch()):
  // where the local view starts when the store goes away.
  struct FleetView {
    State state = State::kClosed;
    std::uint64_t trips = 0;
    std::int64_t open_until_ns = 0;  // OPEN: when its break ends
  };
  // Guards fleet_ and outage_started_ns_; store_down_ flips under it, so
  // fallback_ has the fleet's state before any call of an outage uses it.
  std::mutex view_mutex_;
  FleetView fleet_;
  std::int64_t outage_started_ns_ = 0;
  std::atomic<bool> store_down_{false};
  std::atomic<std::uint64_t> store_operations_{0};

  struct Instruments;
  std::unique_ptr<Instruments> instruments_;

  // Last, so that it stops first: its callback uses the members above.
  Subscription subscription_;
};

}  // namespace prodsafe::breaker
