#include "prodsafe/idempotency/effect_store.hpp"

namespace prodsafe::idempotency {

std::string_view to_string(FinalState state) noexcept {
  switch (state) {
    case FinalState::kCompleted:
      return "completed";
    case FinalState::kFailed:
      return "failed";
    case FinalState::kUnavailable:
      return "unavailable";
  }
  return "completed";
}

}  // namespace prodsafe::idempotency
