#include "prodsafe/idempotency/effect_store.hpp"

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"

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

namespace {

[[noreturn]] void refuse_durability(const EffectStore& store) {
  throw ConfigError(fmt::format(
      "the effect store '{}' cannot wait for replicas; Durability (replicas, aof) needs a store "
      "that can, such as RedisEffectStore",
      store.identity()));
}

}  // namespace

Claim EffectStore::claim_durably(std::string_view key, std::string_view fingerprint,
                                 std::chrono::milliseconds lease, std::chrono::milliseconds ttl,
                                 const Durability& durability) {
  if (durability.on()) refuse_durability(*this);
  return claim(key, fingerprint, lease, ttl);
}

FinishStatus EffectStore::finish_durably(std::string_view key, const Holder& holder,
                                         FinalState state, std::string_view payload,
                                         std::string_view fingerprint,
                                         std::chrono::milliseconds ttl,
                                         const Durability& durability) {
  if (durability.on()) refuse_durability(*this);
  return finish(key, holder, state, payload, fingerprint, ttl);
}

}  // namespace prodsafe::idempotency
