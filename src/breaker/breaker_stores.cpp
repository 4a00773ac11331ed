#include "prodsafe/breaker/breaker_stores.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "breaker_reply.hpp"
#include "prodsafe/breaker_lua.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/script.hpp"

namespace prodsafe::breaker {
namespace {

using std::chrono::duration_cast;

const redis::Script& breaker_script() {
  static const redis::Script script("circuit breaker", std::string(kBreakerLua));
  return script;
}

std::string_view command_name(Command command) {
  switch (command) {
    case Command::kForceOpen:
      return "force_open";
    case Command::kForceClose:
      return "force_close";
    case Command::kDisable:
      return "disable";
    case Command::kReset:
      return "reset";
  }
  return "reset";
}

milliseconds break_for(const BreakerRules& rules, std::uint64_t trips) {
  const double grown = static_cast<double>(rules.break_duration.count()) *
                       std::pow(rules.break_multiplier, static_cast<double>(trips - 1));
  return milliseconds(static_cast<long long>(
      std::min(grown, static_cast<double>(rules.max_break_duration.count()))));
}

}  // namespace

std::string_view to_string(State state) noexcept {
  switch (state) {
    case State::kClosed:
      return "CLOSED";
    case State::kOpen:
      return "OPEN";
    case State::kHalfOpen:
      return "HALF_OPEN";
    case State::kForcedOpen:
      return "FORCED_OPEN";
    case State::kDisabled:
      return "DISABLED";
  }
  return "UNKNOWN";
}

std::optional<State> parse_state(std::string_view text) noexcept {
  for (State state :
       {State::kClosed, State::kOpen, State::kHalfOpen, State::kForcedOpen, State::kDisabled}) {
    if (to_string(state) == text) return state;
  }
  return std::nullopt;
}

namespace detail {

Snapshot decode_breaker_reply(std::string_view name, const redis::Reply& reply) {
  const auto& parts = reply.array();
  if (parts.size() != 9) {
    throw ProtocolError(
        fmt::format("circuit breaker script returned {} for '{}'", reply.debug_string(), name));
  }
  Snapshot snapshot;
  snapshot.state = parse_state(parts[0].str()).value_or(State::kClosed);
  snapshot.previous = parse_state(parts[1].str()).value_or(State::kClosed);
  snapshot.transitioned = parts[2].integer() == 1;
  snapshot.allowed = parts[3].integer() == 1;
  snapshot.failures = static_cast<std::uint64_t>(parts[4].integer());
  snapshot.successes = static_cast<std::uint64_t>(parts[5].integer());
  snapshot.trips = static_cast<std::uint64_t>(parts[6].integer());
  snapshot.retry_after = milliseconds(parts[7].integer());
  snapshot.permit = static_cast<PermitId>(parts[8].integer());
  return snapshot;
}

void rethrow_breaker_error(std::string_view name, const ReplyError& error) {
  if (error.prefix() != "CORRUPT") throw error;
  // "CORRUPT <why>"; a bare "CORRUPT" (another script version) has no why.
  std::string_view why = error.server_message();
  why.remove_prefix(std::min(why.size(), std::string_view("CORRUPT ").size()));
  throw DecodeError(fmt::format("circuit breaker '{}' is not valid: {}", name, why));
}

std::optional<Snapshot> decode_breaker_event(const redis::Reply& message) {
  if (message.type() != redis::Reply::Type::kArray) return std::nullopt;
  const auto& parts = message.array();
  if (parts.size() != 3 || parts[0].str() != "message") return std::nullopt;
  const std::string& payload = parts[2].str();
  const std::size_t colon = payload.find(':');
  const auto state = parse_state(std::string_view(payload).substr(0, colon));
  if (!state) return std::nullopt;
  long long left_ms = 0;
  if (colon != std::string::npos) {
    std::from_chars(payload.data() + colon + 1, payload.data() + payload.size(), left_ms);
  }
  Snapshot snapshot;
  snapshot.state = *state;
  snapshot.retry_after = milliseconds(left_ms);
  return snapshot;
}

}  // namespace detail

RedisBreakerStore::RedisBreakerStore(std::shared_ptr<redis::Client> client)
    : client_(std::move(client)) {
  if (!client_) throw InvalidArgument("RedisBreakerStore needs a redis::Client, got null");
}

std::string RedisBreakerStore::key(std::string_view job_type) const {
  return client_->key(fmt::format("circuit:{}", job_type));
}

std::string RedisBreakerStore::channel(std::string_view job_type) const {
  return key(job_type) + ":events";
}

Snapshot RedisBreakerStore::run(std::string_view job_type, std::string_view op,
                                std::string_view argument, const BreakerRules& rules,
                                PermitId permit) {
  const std::string name = key(job_type);
  const std::string events = name + ":events";
  const std::string args[] = {std::to_string(rules.failure_threshold),
                              std::to_string(rules.time_window.count()),
                              std::to_string(rules.window_buckets),
                              fmt::format("{}", rules.failure_ratio),
                              std::to_string(rules.minimum_throughput),
                              std::to_string(rules.break_duration.count()),
                              fmt::format("{}", rules.break_multiplier),
                              std::to_string(rules.max_break_duration.count()),
                              std::to_string(rules.half_open_max_probes),
                              std::to_string(rules.max_half_open_wait.count()),
                              std::to_string(permit)};
  redis::Reply reply;
  try {
    reply = breaker_script().run(*client_, {name},
                                 {op, argument, args[0], args[1], args[2], args[3], args[4],
                                  args[5], args[6], args[7], args[8], args[9], events, args[10]});
  } catch (const ReplyError& error) {
    detail::rethrow_breaker_error(name, error);
  }
  return detail::decode_breaker_reply(name, reply);
}

Snapshot RedisBreakerStore::record(std::string_view job_type, Outcome outcome,
                                   const BreakerRules& rules, PermitId permit) {
  return run(job_type, "record", outcome == Outcome::kFailure ? "failure" : "success", rules,
             permit);
}

Snapshot RedisBreakerStore::acquire(std::string_view job_type, const BreakerRules& rules) {
  return run(job_type, "acquire", "", rules, kNoPermit);
}

Snapshot RedisBreakerStore::control(std::string_view job_type, Command command,
                                    const BreakerRules& rules) {
  return run(job_type, "control", command_name(command), rules, kNoPermit);
}

Snapshot RedisBreakerStore::read(std::string_view job_type, const BreakerRules& rules) {
  return run(job_type, "read", "", rules, kNoPermit);
}

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

Snapshot InMemoryBreakerStore::snapshot(const Circuit& c, State previous, bool allowed,
                                        Clock::SteadyTime now, std::int64_t index) const {
  Snapshot out;
  out.state = c.state;
  out.previous = previous;
  out.transitioned = c.state != previous;
  out.allowed = allowed;
  out.trips = c.trips;
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
  std::lock_guard lock(mutex_);
  const Step step = step_of(clock_, rules);
  Circuit& c = circuit(job_type, rules);
  const State previous = c.state;
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
  std::lock_guard lock(mutex_);
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
  return out;
}

Snapshot InMemoryBreakerStore::control(std::string_view job_type, Command command,
                                       const BreakerRules& rules) {
  std::lock_guard lock(mutex_);
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
  return snapshot(c, previous, c.state != State::kForcedOpen, step.now, step.index);
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
  return snapshot(c, c.state, c.state != State::kForcedOpen && c.state != State::kOpen, step.now,
                  step.index);
}

}  // namespace prodsafe::breaker
