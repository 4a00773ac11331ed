// The kinds of side effect prodsafe runs exactly once, and the Redis key of
// one effect: effect:<TYPE>:<entity_id> (behind redis::Options::key_prefix).
//
// Thread safety: EffectType is an immutable value.
#pragma once

#include <string>
#include <string_view>

namespace prodsafe::idempotency {

class EffectType {
 public:
  // A custom type. Throws InvalidArgument unless `name` is 1 to 64 characters
  // of [A-Za-z0-9_.-] (no ':', which separates the key's parts).
  explicit EffectType(std::string_view name);
  static EffectType custom(std::string_view name) { return EffectType(name); }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  friend bool operator==(const EffectType&, const EffectType&) = default;

  // The built-in types. These constants break the house naming (kCamel) on
  // purpose: they keep the seed's spelling, EffectType::ORDER_PLACEMENT, so
  // code ported from the seed reads the same, and each is spelt like the name
  // it carries into the Redis key (effect:ORDER_PLACEMENT:<entity_id>).
  static const EffectType ORDER_PLACEMENT;
  static const EffectType POSITION_UPDATE;
  static const EffectType PNL_WRITE;
  static const EffectType LEDGER_WRITE;
  static const EffectType TRADE_STATE_WRITE;

 private:
  std::string name_;
};

inline const EffectType EffectType::ORDER_PLACEMENT{"ORDER_PLACEMENT"};
inline const EffectType EffectType::POSITION_UPDATE{"POSITION_UPDATE"};
inline const EffectType EffectType::PNL_WRITE{"PNL_WRITE"};
inline const EffectType EffectType::LEDGER_WRITE{"LEDGER_WRITE"};
inline const EffectType EffectType::TRADE_STATE_WRITE{"TRADE_STATE_WRITE"};

// Longest entity id accepted, in bytes.
inline constexpr std::size_t kMaxEntityIdBytes = 512;

// Throws InvalidArgument when `entity_id` is empty, longer than
// kMaxEntityIdBytes, or contains a control character (bytes 0x00-0x1F, 0x7F).
void validate_entity_id(std::string_view entity_id);

// "effect:<TYPE>:<entity_id>", after validate_entity_id().
[[nodiscard]] std::string effect_key(const EffectType& type, std::string_view entity_id);

}  // namespace prodsafe::idempotency
