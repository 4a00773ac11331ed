#include "prodsafe/breaker/circuit_breaker.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <string_view>

#include <fmt/format.h>

#include "breaker_reply.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/redis/connection.hpp"

namespace prodsafe::breaker {
namespace {

using std::chrono::duration_cast;
using std::chrono::nanoseconds;

void validate(const std::string& job_type, const CircuitBreakerOptions& o) {
  if (job_type.empty() || job_type.size() > 256) {
    throw InvalidArgument("circuit breaker job type must be 1 to 256 characters");
  }
  for (char c : job_type) {
    if (c == ':' || static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      throw InvalidArgument(fmt::format(
          "circuit breaker job type '{}' contains ':' or a control character", job_type));
    }
  }
  auto refuse = [](std::string_view field, std::string_view range, auto value) {
    throw InvalidArgument(
        fmt::format("CircuitBreakerOptions::{} must be {}, got {}", field, range, value));
  };
  // Durations above a day would overflow the break arithmetic (break ×
  // multiplier^trips) and the store's millisecond fields.
  constexpr auto kMaxDuration = std::chrono::hours(24);
  auto duration = [&](std::string_view field, milliseconds value) {
    if (value.count() <= 0 || value > kMaxDuration) {
      refuse(field, "more than 0 and at most 24 h", fmt::format("{} ms", value.count()));
    }
  };
  if (o.failure_threshold == 0) refuse("failure_threshold", "at least 1", o.failure_threshold);
  duration("time_window", o.time_window);
  if (o.window_buckets <= 0 || o.window_buckets > 1000) {
    refuse("window_buckets", "1 to 1000", o.window_buckets);
  }
  // Written so that NaN, which fails every comparison, is refused too.
  if (!(o.failure_ratio >= 0 && o.failure_ratio <= 1)) {
    refuse("failure_ratio", "in [0, 1]", o.failure_ratio);
  }
  duration("break_duration", o.break_duration);
  if (!(o.break_multiplier >= 1 && std::isfinite(o.break_multiplier))) {
    refuse("break_multiplier", "a finite number >= 1", o.break_multiplier);
  }
  duration("max_break_duration", o.max_break_duration);
  if (o.max_break_duration < o.break_duration) {
    refuse("max_break_duration",
           fmt::format("at least break_duration ({} ms)", o.break_duration.count()),
           fmt::format("{} ms", o.max_break_duration.count()));
  }
  if (o.half_open_max_probes <= 0 || o.half_open_max_probes > 100) {
    refuse("half_open_max_probes", "1 to 100", o.half_open_max_probes);
  }
  duration("max_half_open_wait", o.max_half_open_wait);
  duration("staleness", o.staleness);
}

BreakerRules rules_of(const CircuitBreakerOptions& o) {
  return BreakerRules{o.failure_threshold, o.time_window,        o.window_buckets,
                      o.failure_ratio,     o.minimum_throughput, o.break_duration,
                      o.break_multiplier,  o.max_break_duration, o.half_open_max_probes,
                      o.max_half_open_wait};
}

std::string_view event_for(State state) {
  switch (state) {
    case State::kOpen:
    case State::kForcedOpen:
      return alerts::kCircuitOpened;
    case State::kHalfOpen:
      return alerts::kCircuitHalfOpen;
    case State::kClosed:
      return alerts::kCircuitClosed;
    case State::kDisabled:
      return alerts::kCircuitDisabled;
  }
  return "circuit_changed";
}

constexpr std::array kStates = {State::kClosed, State::kOpen, State::kHalfOpen, State::kForcedOpen,
                                State::kDisabled};

// The metrics' state label, in the enum's order.
constexpr std::array<std::string_view, kStates.size()> kStateLabels = {
    "closed", "open", "half_open", "forced_open", "disabled"};

std::size_t index(State state) { return static_cast<std::size_t>(state); }

}  // namespace

// The breaker's series (docs/metrics.md), resolved once: its job type is the
// "breaker" label.
struct CircuitBreaker::Instruments {
  Instruments(metrics::Registry& registry, const std::string& breaker) {
    auto& state = registry.gauge("prodsafe_breaker_state",
                                 "1 for the breaker's current state (as this process sees it), "
                                 "0 for the others.",
                                 {"breaker", "state"});
    auto& transitions = registry.counter(
        "prodsafe_breaker_transitions_total",
        "Transitions this process decided, by the state entered (the fleet's sum is the count).",
        {"breaker", "to"});
    for (const State each : kStates) {
      states[index(each)] = &state.labels({breaker, kStateLabels[index(each)]});
      entered[index(each)] = &transitions.labels({breaker, kStateLabels[index(each)]});
    }
    rejections = &registry
                      .counter("prodsafe_breaker_rejections_total", "Calls can_retry() refused.",
                               {"breaker"})
                      .labels({breaker});
    store_errors =
        &registry
             .counter("prodsafe_breaker_store_errors_total",
                      "Store operations that failed (the breaker then decided on its local view).",
                      {"breaker"})
             .labels({breaker});
  }
  void show(State state) {
    for (const State each : kStates) states[index(each)]->set(each == state ? 1.0 : 0.0);
  }

  std::array<metrics::Gauge*, kStates.size()> states{};
  std::array<metrics::Counter*, kStates.size()> entered{};
  metrics::Counter* rejections = nullptr;
  metrics::Counter* store_errors = nullptr;
};

CircuitBreaker::CircuitBreaker(std::shared_ptr<BreakerStore> store, std::string job_type,
                               CircuitBreakerOptions options)
    : store_(std::move(store)),
      job_type_(std::move(job_type)),
      options_(std::move(options)),
      rules_(rules_of(options_)),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock::instance()),
      fallback_(&clock_) {
  if (!store_) throw InvalidArgument("CircuitBreaker needs a BreakerStore, got null");
  validate(job_type_, options_);
  instruments_ = std::make_unique<Instruments>(
      options_.metrics != nullptr ? *options_.metrics : metrics::default_registry(), job_type_);
  instruments_->show(State::kClosed);
  if (auto* redis_store = dynamic_cast<RedisBreakerStore*>(store_.get());
      redis_store != nullptr && options_.subscribe) {
    subscriber_ =
        std::thread([this, channel = redis_store->channel(job_type_)] { subscribe_loop(channel); });
  }
}

CircuitBreaker::~CircuitBreaker() {
  stopping_.store(true);
  if (subscriber_.joinable()) subscriber_.join();
}

std::int64_t CircuitBreaker::now_ns() const {
  return duration_cast<nanoseconds>(clock_.coarse_steady_now().time_since_epoch()).count();
}

void CircuitBreaker::adopt(const Snapshot& snapshot) {
  const std::int64_t now = now_ns();
  if (local_state_.exchange(snapshot.state) != snapshot.state) instruments_->show(snapshot.state);
  open_until_ns_.store(now + duration_cast<nanoseconds>(snapshot.retry_after).count());
  synced_at_ns_.store(now);
}

void CircuitBreaker::announce(const Snapshot& snapshot, std::string_view cause) {
  instruments_->entered[index(snapshot.state)]->inc();
  if (!options_.alert_hooks) return;
  alerts::AlertContext context;
  context.job_type = job_type_;
  context.state = std::string(to_string(snapshot.state));
  context.previous_state = std::string(to_string(snapshot.previous));
  context.failure_count = snapshot.failures;
  context.threshold = options_.failure_threshold;
  context.window = options_.time_window;
  context.timestamp = clock_.system_now();
  context.instance = alerts::this_instance();
  context.extra["trips"] = std::to_string(snapshot.trips);
  if (!cause.empty()) context.extra["decided_by"] = std::string(cause);
  std::string message;
  switch (snapshot.state) {
    case State::kOpen:
      message = fmt::format(
          "circuit {} opened after {} failures in {} s (threshold {}); calls are refused for {} ms",
          job_type_, snapshot.failures, options_.time_window.count() / 1000,
          options_.failure_threshold, snapshot.retry_after.count());
      break;
    case State::kHalfOpen:
      message = fmt::format("circuit {} is half-open: letting {} probe call(s) through", job_type_,
                            options_.half_open_max_probes);
      break;
    case State::kClosed:
      message = fmt::format("circuit {} closed: calls flow again", job_type_);
      break;
    case State::kForcedOpen:
      message = fmt::format("circuit {} was forced open by an operator", job_type_);
      break;
    case State::kDisabled:
      message =
          fmt::format("circuit {} was disabled by an operator: every call is allowed", job_type_);
      break;
  }
  options_.alert_hooks->fire(event_for(snapshot.state), message, context);
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
  fallback_.restore(job_type_, image, rules_);
}

void CircuitBreaker::alert_store_unavailable(std::string_view reason) {
  logger()->warn(
      "circuit {}: the store cannot be used ({}); deciding on this process's view, from the "
      "fleet's last known state ({})",
      job_type_, reason, to_string(local_state_.load()));
  if (!options_.alert_hooks) return;
  alerts::AlertContext context;
  context.job_type = job_type_;
  context.state = std::string(to_string(local_state_.load()));
  context.previous_state = context.state;
  context.threshold = options_.failure_threshold;
  context.window = options_.time_window;
  context.timestamp = clock_.system_now();
  context.instance = alerts::this_instance();
  context.extra["error"] = std::string(reason);
  options_.alert_hooks->fire(alerts::kCircuitStoreUnavailable,
                             fmt::format("circuit {}: the breaker's store is unreachable; "
                                         "this process decides on its own view until it is back",
                                         job_type_),
                             context);
}

void CircuitBreaker::alert_store_available(State fleet, State local, std::int64_t outage_ns) {
  const auto outage = duration_cast<milliseconds>(nanoseconds(outage_ns));
  logger()->info(
      "circuit {}: the store is reachable again after {} ms; the fleet's state ({}) applies",
      job_type_, outage.count(), to_string(fleet));
  if (!options_.alert_hooks) return;
  alerts::AlertContext context;
  context.job_type = job_type_;
  context.state = std::string(to_string(fleet));
  context.previous_state = std::string(to_string(local));
  context.threshold = options_.failure_threshold;
  context.window = options_.time_window;
  context.timestamp = clock_.system_now();
  context.instance = alerts::this_instance();
  context.extra["outage_ms"] = std::to_string(outage.count());
  options_.alert_hooks->fire(
      kCircuitStoreAvailable,
      fmt::format("circuit {}: the breaker's store is reachable again; the fleet's state ({}) "
                  "applies, and what this process decided on its own view ({}) is over",
                  job_type_, to_string(fleet), to_string(local)),
      context);
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
    Snapshot snapshot = operation(fallback_);
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

void CircuitBreaker::force_open() {
  apply(
      [this](BreakerStore& store) { return store.control(job_type_, Command::kForceOpen, rules_); },
      true);
}

void CircuitBreaker::force_close() {
  apply([this](
            BreakerStore& store) { return store.control(job_type_, Command::kForceClose, rules_); },
        true);
}

void CircuitBreaker::disable() {
  apply([this](BreakerStore& store) { return store.control(job_type_, Command::kDisable, rules_); },
        true);
}

void CircuitBreaker::reset() {
  apply([this](BreakerStore& store) { return store.control(job_type_, Command::kReset, rules_); },
        true);
}

std::function<bool()> CircuitBreaker::gate() {
  return [this] { return can_retry().allowed; };
}

void CircuitBreaker::subscribe_loop(std::string channel) {
  auto* redis_store = static_cast<RedisBreakerStore*>(store_.get());
  redis::Options options = redis_store->client().options();
  options.command_timeout = std::chrono::seconds(1);
  while (!stopping_.load()) {
    try {
      redis::Connection connection(redis_store->client().endpoint(), options);
      const std::string_view channels[] = {channel};
      connection.subscribe(channels);
      while (!stopping_.load()) {
        const auto message = connection.next_message(std::chrono::milliseconds(100));
        if (!message) continue;
        const auto event = detail::decode_breaker_event(*message);
        if (!event) continue;
        Snapshot snapshot = *event;
        {
          // Messages carry no trip count: each entry into OPEN is one more
          // trip, and CLOSED starts again from none, as in the store.
          std::lock_guard lock(view_mutex_);
          snapshot.trips = snapshot.state == State::kClosed ? 0
                           : snapshot.state == State::kOpen && fleet_.state != State::kOpen
                               ? fleet_.trips + 1
                               : fleet_.trips;
          remember_fleet(snapshot, now_ns());
        }
        adopt(snapshot);
      }
    } catch (const Error&) {
      // The store is down or the connection broke: staleness refreshes cover
      // the gap; try again shortly.
      for (int i = 0; i < 5 && !stopping_.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace prodsafe::breaker
