// The circuit breaker's decisions: the store's answer, or the local view's
// while the store cannot be used, and the probe permits this process holds.
#include "prodsafe/breaker/circuit_breaker.hpp"

#include <algorithm>
#include <string_view>

#include <fmt/format.h>

#include "breaker_instruments.hpp"
#include "breaker_options.hpp"
#include "prodsafe/breaker/in_memory_breaker_store.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"

namespace prodsafe::breaker {
namespace {

using std::chrono::duration_cast;
using std::chrono::nanoseconds;

}  // namespace

CircuitBreaker::CircuitBreaker(std::shared_ptr<BreakerStore> store, std::string job_type,
                               CircuitBreakerOptions options)
    : store_(std::move(store)),
      job_type_(std::move(job_type)),
      options_(std::move(options)),
      rules_(options_.rules()),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock::instance()),
      fallback_(std::make_unique<InMemoryBreakerStore>(&clock_)) {
  if (!store_) throw InvalidArgument("CircuitBreaker needs a BreakerStore, got null");
  detail::validate_breaker(job_type_, options_);
  instruments_ = std::make_unique<Instruments>(
      options_.metrics != nullptr ? *options_.metrics : metrics::default_registry(), job_type_);
  instruments_->show(State::kClosed);
  if (options_.subscribe) {
    subscription_ = store_->watch(
        job_type_, [this](const Transition& transition) { on_transition(transition); });
  }
}

// Stops the watch before any member its callback uses goes.
CircuitBreaker::~CircuitBreaker() { subscription_.stop(); }

std::int64_t CircuitBreaker::now_ns() const {
  return duration_cast<nanoseconds>(clock_.coarse_steady_now().time_since_epoch()).count();
}

void CircuitBreaker::adopt(const Snapshot& snapshot) {
  const std::int64_t now = now_ns();
  if (local_state_.exchange(snapshot.state) != snapshot.state) instruments_->show(snapshot.state);
  open_until_ns_.store(now + duration_cast<nanoseconds>(snapshot.retry_after).count());
  synced_at_ns_.store(now);
}

void CircuitBreaker::remember_fleet(const Snapshot& snapshot, std::int64_t now) {
  fleet_.state = snapshot.state;
  fleet_.trips = snapshot.trips;
  fleet_.open_until_ns = snapshot.state == State::kOpen
                             ? now + duration_cast<nanoseconds>(snapshot.retry_after).count()
                             : 0;
}

// The local view takes the fleet's last known state, with the probe permits
// the store granted this process that are still out.
void CircuitBreaker::start_local_view(std::int64_t now) {
  CircuitImage image;
  image.state = fleet_.state;
  image.trips = fleet_.trips;
  if (fleet_.state == State::kOpen && fleet_.open_until_ns > now) {
    image.open_for = duration_cast<milliseconds>(nanoseconds(fleet_.open_until_ns - now));
  }
  if (fleet_.state == State::kHalfOpen) {
    std::lock_guard lock(permits_mutex_);
    for (const HeldPermit& held : held_permits_) {
      if (held.from_store && held.frees_ns > now) {
        image.probes.push_back(
            {held.id, duration_cast<milliseconds>(nanoseconds(held.frees_ns - now))});
      }
    }
  }
  fallback_->restore(job_type_, image, rules_);
}

template <class Operation>
Snapshot CircuitBreaker::apply(Operation&& operation, bool throw_when_down, bool* decided_locally) {
  store_operations_.fetch_add(1, std::memory_order_relaxed);
  try {
    Snapshot snapshot = operation(*store_);
    const std::int64_t now = now_ns();
    bool back = false;
    std::int64_t outage_ns = 0;
    const State local = local_state_.load();
    {
      std::lock_guard lock(view_mutex_);
      remember_fleet(snapshot, now);
      back = store_down_.exchange(false);
      if (back) outage_ns = now - outage_started_ns_;
    }
    adopt(snapshot);
    if (back) alert_store_available(snapshot.state, local, outage_ns);
    if (snapshot.transitioned) announce(snapshot, "");
    return snapshot;
  } catch (const InvalidArgument&) {
    throw;
  } catch (const Error& error) {
    instruments_->store_errors->inc();
    if (throw_when_down) throw;
    bool first = false;
    {
      std::lock_guard lock(view_mutex_);
      first = !store_down_.exchange(true);
      if (first) {
        outage_started_ns_ = now_ns();
        start_local_view(outage_started_ns_);
      }
    }
    if (first) alert_store_unavailable(error.what());
    Snapshot snapshot = operation(*fallback_);
    if (decided_locally != nullptr) *decided_locally = true;
    adopt(snapshot);
    if (snapshot.transitioned) announce(snapshot, "local view (store unreachable)");
    return snapshot;
  }
}

Permission CircuitBreaker::can_retry() noexcept {
  Permission permission = decide();
  if (!permission.allowed) instruments_->rejections->inc();
  return permission;
}

Permission CircuitBreaker::can_retry(tracing::Span& span) noexcept {
  Permission permission = can_retry();
  if (span.recording()) {
    try {
      span.add_event("prodsafe.breaker.decision",
                     {{"prodsafe.breaker.job_type", job_type_},
                      {"prodsafe.breaker.allowed", permission.allowed},
                      {"prodsafe.breaker.state", std::string(to_string(permission.state))},
                      {"prodsafe.breaker.reason", permission.reason}});
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; the decision stands
    }
  }
  return permission;
}

Permission CircuitBreaker::decide() noexcept {
  const std::int64_t now = now_ns();
  const State local = local_state_.load(std::memory_order_relaxed);
  const bool fresh = now - synced_at_ns_.load(std::memory_order_relaxed) <
                     duration_cast<nanoseconds>(options_.staleness).count();
  if ((local == State::kClosed || local == State::kDisabled) && fresh) return Permission{};
  const std::int64_t open_until = open_until_ns_.load(std::memory_order_relaxed);
  if (local == State::kOpen && now < open_until) {
    const auto left = duration_cast<milliseconds>(nanoseconds(open_until - now));
    return Permission{false,
                      fmt::format("circuit {} is open for {} ms more", job_type_, left.count()),
                      State::kOpen, left};
  }
  if (local == State::kForcedOpen && fresh) {
    return Permission{false, fmt::format("circuit {} is forced open", job_type_),
                      State::kForcedOpen, milliseconds(0)};
  }
  try {
    if (local == State::kClosed || local == State::kDisabled) {
      // Stale: one thread refreshes, the others keep using the view meanwhile.
      if (refreshing_.exchange(true)) return Permission{};
      Snapshot snapshot;
      try {
        snapshot =
            apply([this](BreakerStore& store) { return store.read(job_type_, rules_); }, false);
      } catch (...) {
        refreshing_.store(false);
        throw;
      }
      refreshing_.store(false);
      if (snapshot.state == State::kClosed || snapshot.state == State::kDisabled)
        return Permission{};
    }
    bool decided_locally = false;
    const Snapshot snapshot =
        apply([this](BreakerStore& store) { return store.acquire(job_type_, rules_); }, false,
              &decided_locally);
    if (snapshot.permit != kNoPermit) hold_permit(snapshot.permit, !decided_locally);
    if (snapshot.allowed) {
      return Permission{true, "", snapshot.state, milliseconds(0), snapshot.permit};
    }
    return Permission{false,
                      fmt::format("circuit {} is {}; retry after {} ms", job_type_,
                                  to_string(snapshot.state), snapshot.retry_after.count()),
                      snapshot.state, snapshot.retry_after};
  } catch (const std::exception& error) {
    logger()->error("circuit {}: can_retry failed unexpectedly ({}); allowing the call", job_type_,
                    error.what());
    return Permission{};
  }
}

void CircuitBreaker::hold_permit(PermitId permit, bool from_store) {
  const std::int64_t now = now_ns();
  const auto me = std::this_thread::get_id();
  std::lock_guard lock(permits_mutex_);
  // A thread holds one permit: a new one replaces what it never reported.
  std::erase_if(held_permits_,
                [&](const HeldPermit& held) { return held.thread == me || held.frees_ns <= now; });
  if (held_permits_.size() >= kMaxHeldPermits) held_permits_.erase(held_permits_.begin());
  held_permits_.push_back(
      HeldPermit{me, permit, now + duration_cast<nanoseconds>(options_.max_half_open_wait).count(),
                 from_store});
  permits_held_.store(held_permits_.size());
}

PermitId CircuitBreaker::this_threads_permit() {
  if (permits_held_.load() == 0) return kNoPermit;
  const auto me = std::this_thread::get_id();
  std::lock_guard lock(permits_mutex_);
  const auto held = std::find_if(held_permits_.begin(), held_permits_.end(),
                                 [&](const HeldPermit& each) { return each.thread == me; });
  return held == held_permits_.end() ? kNoPermit : held->id;
}

void CircuitBreaker::forget_permit(PermitId permit) {
  if (permit == kNoPermit || permits_held_.load() == 0) return;
  std::lock_guard lock(permits_mutex_);
  std::erase_if(held_permits_, [&](const HeldPermit& held) { return held.id == permit; });
  permits_held_.store(held_permits_.size());
}

// The permit stays held until its outcome is recorded: if this very record
// meets an outage, the local view starts with the permit and it decides there.
void CircuitBreaker::record(Outcome outcome, PermitId permit) noexcept {
  try {
    // In count mode a success in CLOSED changes nothing: skip the round trip.
    if (outcome != Outcome::kSuccess || permit != kNoPermit || options_.failure_ratio > 0 ||
        local_state_.load() != State::kClosed) {
      apply([&](BreakerStore& store) { return store.record(job_type_, outcome, rules_, permit); },
            false);
    }
    forget_permit(permit);
  } catch (const std::exception& error) {
    logger()->error("circuit {}: recording a {} failed unexpectedly: {}", job_type_,
                    outcome == Outcome::kSuccess ? "success" : "failure", error.what());
  }
}

void CircuitBreaker::record_success() noexcept {
  PermitId permit = kNoPermit;
  try {
    permit = this_threads_permit();
  } catch (const std::exception&) {  // std::system_error from the mutex: record without
  }
  record(Outcome::kSuccess, permit);
}

void CircuitBreaker::record_failure() noexcept {
  PermitId permit = kNoPermit;
  try {
    permit = this_threads_permit();
  } catch (const std::exception&) {  // as above
  }
  record(Outcome::kFailure, permit);
}

void CircuitBreaker::record_success(const Permission& permission) noexcept {
  record(Outcome::kSuccess, permission.permit);
}

void CircuitBreaker::record_failure(const Permission& permission) noexcept {
  record(Outcome::kFailure, permission.permit);
}

State CircuitBreaker::state() noexcept {
  try {
    return apply([this](BreakerStore& store) { return store.read(job_type_, rules_); }, false)
        .state;
  } catch (const std::exception&) {
    return local_state_.load();
  }
}

void CircuitBreaker::force(Command command, std::string_view actor) {
  const std::string who = actor.empty() ? alerts::this_instance() : std::string(actor);
  check_actor(who);
  apply([&](BreakerStore& store) { return store.control(job_type_, command, rules_, who); }, true);
}

void CircuitBreaker::force_open(std::string_view actor) { force(Command::kForceOpen, actor); }

void CircuitBreaker::force_close(std::string_view actor) { force(Command::kForceClose, actor); }

void CircuitBreaker::disable(std::string_view actor) { force(Command::kDisable, actor); }

void CircuitBreaker::reset() {
  apply([this](BreakerStore& store) { return store.control(job_type_, Command::kReset, rules_); },
        true);
}

std::function<bool()> CircuitBreaker::gate() {
  return [this] { return can_retry().allowed; };
}

void CircuitBreaker::on_transition(const Transition& transition) {
  Snapshot snapshot;
  snapshot.state = transition.state;
  snapshot.retry_after = transition.retry_after;
  {
    std::lock_guard lock(view_mutex_);
    // A store that does not say counts as the script does: each entry into
    // OPEN is one more trip, and CLOSED starts again from none.
    snapshot.trips = transition.trips.value_or(
        transition.state == State::kClosed                                 ? 0
        : transition.state == State::kOpen && fleet_.state != State::kOpen ? fleet_.trips + 1
                                                                           : fleet_.trips);
    remember_fleet(snapshot, now_ns());
  }
  adopt(snapshot);
}

}  // namespace prodsafe::breaker
