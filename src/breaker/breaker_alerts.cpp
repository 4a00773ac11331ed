// What a CircuitBreaker tells its alert hooks and its log.
#include <string_view>

#include <fmt/format.h>

#include "breaker_instruments.hpp"
#include "prodsafe/breaker/circuit_breaker.hpp"
#include "prodsafe/core/log.hpp"

namespace prodsafe::breaker {
namespace {

using std::chrono::duration_cast;
using std::chrono::nanoseconds;

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

}  // namespace

void CircuitBreaker::announce(const Snapshot& snapshot, std::string_view cause) {
  instruments_->entered[state_index(snapshot.state)]->inc();
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

}  // namespace prodsafe::breaker
