#include "prodsafe/breaker/breaker_store.hpp"

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::breaker {

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

void check_actor(std::string_view actor) {
  if (actor.size() > kMaxActorBytes) {
    throw InvalidArgument(fmt::format(
        "a circuit breaker command's actor is at most {} bytes, got {}: name the operator or "
        "process briefly",
        kMaxActorBytes, actor.size()));
  }
}

std::optional<State> parse_state(std::string_view text) noexcept {
  for (State state :
       {State::kClosed, State::kOpen, State::kHalfOpen, State::kForcedOpen, State::kDisabled}) {
    if (to_string(state) == text) return state;
  }
  return std::nullopt;
}

}  // namespace prodsafe::breaker
