// Internal: the circuit breaker's series (docs/metrics.md), resolved once.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "prodsafe/breaker/circuit_breaker.hpp"
#include "prodsafe/metrics/registry.hpp"

namespace prodsafe::breaker {

inline constexpr std::array kStates = {State::kClosed, State::kOpen, State::kHalfOpen,
                                       State::kForcedOpen, State::kDisabled};

// The metrics' state label, in the enum's order.
inline constexpr std::array<std::string_view, kStates.size()> kStateLabels = {
    "closed", "open", "half_open", "forced_open", "disabled"};

inline std::size_t state_index(State state) { return static_cast<std::size_t>(state); }

// The breaker's job type is the "breaker" label.
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
      states[state_index(each)] = &state.labels({breaker, kStateLabels[state_index(each)]});
      entered[state_index(each)] = &transitions.labels({breaker, kStateLabels[state_index(each)]});
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
    for (const State each : kStates) states[state_index(each)]->set(each == state ? 1.0 : 0.0);
  }

  std::array<metrics::Gauge*, kStates.size()> states{};
  std::array<metrics::Counter*, kStates.size()> entered{};
  metrics::Counter* rejections = nullptr;
  metrics::Counter* store_errors = nullptr;
};

}  // namespace prodsafe::breaker
