#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>

#include "prodsafe/breaker/in_memory_breaker_store.hpp"
#include "prodsafe/core/log.hpp"

namespace prodsafe::breaker {
namespace {

using std::chrono::duration_cast;

milliseconds break_for(const BreakerRules& rules, std::uint64_t trips) {
  const double grown = static_cast<double>(rules.break_duration.count()) *
                       std::pow(rules.break_multiplier, static_cast<double>(trips - 1));
  return milliseconds(static_cast<long long>(
      std::min(grown, static_cast<double>(rules.max_break_duration.count()))));
}

}  // namespace

InMemoryBreakerStore::InMemoryBreakerStore(Clock* clock)
    : clock_(clock != nullptr ? *clock : SystemClock::instance()) {}

InMemoryBreakerStore::Circuit& InMemoryBreakerStore::circuit(std::string_view job_type,
                                                             const BreakerRules& rules) {
  auto found = circuits_.find(job_type);
  if (found == circuits_.end()) found = circuits_.emplace(std::string(job_type), Circuit{}).first;
  Circuit& c = found->second;
  if (c.buckets.size() != static_cast<std::size_t>(rules.window_buckets)) {
    c.buckets.assign(static_cast<std::size_t>(rules.window_buckets), Bucket{});
  }
  if (c.permits.size() != static_cast<std::size_t>(rules.half_open_max_probes)) {
    c.permits.assign(static_cast<std::size_t>(rules.half_open_max_probes), Permit{});
  }
  return c;
}

void InMemoryBreakerStore::forget_forced(Circuit& c, Snapshot& out) {
  c.forced_by.clear();
  c.forced_at = milliseconds(0);
  out.forced_by.clear();
  out.forced_at = milliseconds(0);
}

Snapshot InMemoryBreakerStore::snapshot(const Circuit& c, State previous, bool allowed,
                                        Clock::SteadyTime now, std::int64_t index) const {
  Snapshot out;
  out.state = c.state;
  out.previous = previous;
  out.transitioned = c.state != previous;
  out.allowed = allowed;
  out.trips = c.trips;
  out.forced_by = c.forced_by;
  out.forced_at = c.forced_at;
  const auto window = static_cast<std::int64_t>(c.buckets.size());
  for (const Bucket& bucket : c.buckets) {
    if (bucket.index > index - window) {
      out.failures += bucket.failures;
      out.successes += bucket.successes;
    }
  }
  if (c.state == State::kOpen || (c.state == State::kHalfOpen && !allowed)) {
    out.retry_after =
        c.open_until > now ? duration_cast<milliseconds>(c.open_until - now) : milliseconds(0);
  }
  return out;
}

namespace {

struct Step {
  Clock::SteadyTime now;
  std::int64_t index;
};

Step step_of(const Clock& clock, const BreakerRules& rules) {
  const auto now = clock.steady_now();
  const auto bucket_ms = std::max<long long>(1, rules.time_window.count() / rules.window_buckets);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
  return Step{now, ms / bucket_ms};
}

}  // namespace

Snapshot InMemoryBreakerStore::record(std::string_view job_type, Outcome outcome,
                                      const BreakerRules& rules, PermitId permit) {
  std::unique_lock lock(mutex_);
  const Step step = step_of(clock_, rules);
  Circuit& c = circuit(job_type, rules);
  const State previous = c.state;
  Snapshot out = decide(c, previous, step.now, step.index, outcome, rules, permit);
  if (c.state != previous) forget_forced(c, out);
  announce(lock, job_type, c, previous, step.now);
  return out;
}

Snapshot InMemoryBreakerStore::decide(Circuit& c, State previous, Clock::SteadyTime now,
                                      std::int64_t index, Outcome outcome,
                                      const BreakerRules& rules, PermitId permit) const {
  const Step step{now, index};
  auto clear = [&c] {
    std::fill(c.buckets.begin(), c.buckets.end(), Bucket{});
    std::fill(c.permits.begin(), c.permits.end(), Permit{});
  };
  auto open = [&] {
    c.trips += 1;
    c.open_until = step.now + break_for(rules, c.trips);
    clear();
    c.state = State::kOpen;
  };
  if (c.state == State::kOpen && step.now >= c.open_until) c.state = State::kHalfOpen;
  const bool probe = c.state == State::kHalfOpen && permit != kNoPermit &&
                     std::any_of(c.permits.begin(), c.permits.end(), [&](const Permit& held) {
                       return held.id == permit && held.frees > step.now;
                     });
  if (probe) {
    if (outcome == Outcome::kSuccess) {
      c.trips = 0;
      clear();
      c.state = State::kClosed;
    } else {
      open();
    }
    return snapshot(c, previous, true, step.now, step.index);
  }
  if (c.state != State::kClosed && c.state != State::kHalfOpen) {
    return snapshot(c, previous, true, step.now, step.index);
  }

  Bucket& bucket = c.buckets[static_cast<std::size_t>(step.index % rules.window_buckets)];
  if (bucket.index != step.index) bucket = Bucket{step.index, 0, 0};
  (outcome == Outcome::kFailure ? bucket.failures : bucket.successes) += 1;
  Snapshot counted = snapshot(c, previous, true, step.now, step.index);
  if (c.state == State::kHalfOpen) return counted;  // only a probe decides
  const std::uint64_t calls = counted.failures + counted.successes;
  const bool trip = rules.failure_ratio > 0
                        ? calls >= rules.minimum_throughput &&
                              static_cast<double>(counted.failures) / static_cast<double>(calls) >=
                                  rules.failure_ratio
                        : counted.failures >= rules.failure_threshold;
  if (!trip) return counted;
  open();
  Snapshot opened = snapshot(c, previous, true, step.now, step.index);
  opened.failures = counted.failures;
  opened.successes = counted.successes;
  return opened;
}

Snapshot InMemoryBreakerStore::acquire(std::string_view job_type, const BreakerRules& rules) {
  std::unique_lock lock(mutex_);
  const Step step = step_of(clock_, rules);
  Circuit& c = circuit(job_type, rules);
  const State previous = c.state;
  if (c.state == State::kOpen && step.now >= c.open_until) c.state = State::kHalfOpen;
  bool allowed = c.state == State::kClosed || c.state == State::kDisabled;
  PermitId granted = kNoPermit;
  if (c.state == State::kHalfOpen) {
    Clock::SteadyTime soonest = Clock::SteadyTime::max();
    for (Permit& permit : c.permits) {
      if (permit.frees <= step.now) {
        granted = ++last_permit_;
        permit = Permit{step.now + rules.max_half_open_wait, granted};
        allowed = true;
        break;
      }
      soonest = std::min(soonest, permit.frees);
    }
    if (!allowed) c.open_until = soonest;
  }
  Snapshot out = snapshot(c, previous, allowed, step.now, step.index);
  out.permit = granted;
  if (c.state != previous) forget_forced(c, out);
  announce(lock, job_type, c, previous, step.now);
  return out;
}

Snapshot InMemoryBreakerStore::control(std::string_view job_type, Command command,
                                       const BreakerRules& rules, std::string_view actor) {
  check_actor(actor);
  std::unique_lock lock(mutex_);
  const Step step = step_of(clock_, rules);
  Circuit& c = circuit(job_type, rules);
  const State previous = c.state;
  switch (command) {
    case Command::kForceOpen:
      c.state = State::kForcedOpen;
      break;
    case Command::kDisable:
      c.state = State::kDisabled;
      break;
    case Command::kForceClose:
    case Command::kReset:
      c.trips = 0;
      std::fill(c.buckets.begin(), c.buckets.end(), Bucket{});
      std::fill(c.permits.begin(), c.permits.end(), Permit{});
      c.open_until = Clock::SteadyTime{};
      c.state = State::kClosed;
      break;
  }
  c.forced_by = command == Command::kReset ? std::string() : std::string(actor);
  c.forced_at = c.forced_by.empty()
                    ? milliseconds(0)
                    : duration_cast<milliseconds>(clock_.system_now().time_since_epoch());
  const Snapshot out = snapshot(c, previous, true, step.now, step.index);
  announce(lock, job_type, c, previous, step.now);
  return out;
}

void InMemoryBreakerStore::restore(std::string_view job_type, const CircuitImage& image,
                                   const BreakerRules& rules) {
  std::lock_guard lock(mutex_);
  const auto now = clock_.steady_now();
  Circuit& c = circuit(job_type, rules);
  c.state = image.state;
  c.trips = image.trips;
  c.open_until = now + image.open_for;
  std::fill(c.buckets.begin(), c.buckets.end(), Bucket{});
  std::fill(c.permits.begin(), c.permits.end(), Permit{});
  const std::size_t kept = std::min(image.probes.size(), c.permits.size());
  for (std::size_t i = 0; i < kept; ++i) {
    c.permits[i] = Permit{now + image.probes[i].held_for, image.probes[i].id};
  }
}

Snapshot InMemoryBreakerStore::read(std::string_view job_type, const BreakerRules& rules) {
  std::lock_guard lock(mutex_);
  const Step step = step_of(clock_, rules);
  const Circuit& c = circuit(job_type, rules);
  return snapshot(c, c.state, true, step.now, step.index);
}

// The watch's callback and whether it still runs; shared by the store's
// list and the Subscription, so either may go first.
struct detail::MemoryWatcher {
  // Held while the callback runs, so that stop() waits for it; recursive, so
  // that the callback itself may stop its watch.
  std::recursive_mutex calling;
  std::atomic<bool> stopped{false};
  TransitionCallback callback;  // guarded by calling

  void deliver(const Transition& transition) {
    std::lock_guard lock(calling);
    if (stopped.load()) return;
    try {
      callback(transition);
    } catch (const std::exception& error) {
      logger()->error("breaker watch: the callback threw ({}); dropped", error.what());
    } catch (...) {
      logger()->error("breaker watch: the callback threw; dropped");
    }
  }
};

namespace {

class MemoryWatch final : public Subscription::Handle {
 public:
  explicit MemoryWatch(std::shared_ptr<detail::MemoryWatcher> watcher)
      : watcher_(std::move(watcher)) {}
  void stop() noexcept override {
    watcher_->stopped.store(true);
    // Waits for a delivery under way (on another thread) to end.
    std::lock_guard lock(watcher_->calling);
  }
  [[nodiscard]] bool listening() const noexcept override { return !watcher_->stopped.load(); }

 private:
  std::shared_ptr<detail::MemoryWatcher> watcher_;
};

}  // namespace

Subscription InMemoryBreakerStore::watch(std::string_view job_type, TransitionCallback callback) {
  auto watcher = std::make_shared<detail::MemoryWatcher>();
  watcher->callback = std::move(callback);
  {
    std::lock_guard lock(mutex_);
    auto found = watchers_.find(job_type);
    if (found == watchers_.end())
      found = watchers_.emplace(std::string(job_type), Watchers{}).first;
    std::erase_if(found->second, [](const auto& each) { return each->stopped.load(); });
    found->second.push_back(watcher);
  }
  return Subscription(std::make_unique<MemoryWatch>(std::move(watcher)));
}

void InMemoryBreakerStore::announce(std::unique_lock<std::mutex>& lock, std::string_view job_type,
                                    const Circuit& c, State previous, Clock::SteadyTime now) {
  if (c.state != previous) {
    const auto found = watchers_.find(job_type);
    if (found != watchers_.end() && !found->second.empty()) {
      Transition transition;
      transition.state = c.state;
      transition.trips = c.trips;
      if (c.state == State::kOpen && c.open_until > now) {
        transition.retry_after = duration_cast<milliseconds>(c.open_until - now);
      }
      announced_.emplace_back(std::string(job_type), transition);
    }
  }
  // One thread delivers at a time, so every watcher sees the transitions in
  // the order they were made; the others leave theirs to it.
  if (delivering_ || announced_.empty()) {
    lock.unlock();
    return;
  }
  // Whatever throws (a copy that runs out of memory), the next transition
  // finds delivery free and the undelivered ones still queued.
  struct Delivering {
    bool& flag;
    std::unique_lock<std::mutex>& lock;
    ~Delivering() {
      if (!lock.owns_lock()) lock.lock();
      flag = false;
      lock.unlock();
    }
  };
  delivering_ = true;
  const Delivering release{delivering_, lock};
  while (!announced_.empty()) {
    Watchers watchers;
    if (const auto found = watchers_.find(announced_.front().first); found != watchers_.end()) {
      std::erase_if(found->second, [](const auto& each) { return each->stopped.load(); });
      watchers = found->second;
    }
    const Transition transition = announced_.front().second;
    announced_.pop_front();
    lock.unlock();
    for (const auto& watcher : watchers) watcher->deliver(transition);
    lock.lock();
  }
}

}  // namespace prodsafe::breaker
