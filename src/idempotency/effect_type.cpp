#include "prodsafe/idempotency/effect_type.hpp"

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::idempotency {
namespace {

bool allowed_in_type(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

}  // namespace

EffectType::EffectType(std::string_view name) : name_(name) {
  if (name.empty() || name.size() > 64) {
    throw InvalidArgument(
        fmt::format("effect type name must be 1 to 64 characters, got {} characters", name.size()));
  }
  for (char c : name) {
    if (!allowed_in_type(c)) {
      throw InvalidArgument(fmt::format(
          "effect type '{}' contains '{}'; use letters, digits, '_', '.' or '-'", name, c));
    }
  }
}

void validate_entity_id(std::string_view entity_id) {
  if (entity_id.empty()) {
    throw InvalidArgument("entity id is empty; pass the id of the order, position or ledger entry");
  }
  if (entity_id.size() > kMaxEntityIdBytes) {
    throw InvalidArgument(fmt::format(
        "entity id is {} bytes, over the limit of {}; pass a shorter id or a hash of it",
        entity_id.size(), kMaxEntityIdBytes));
  }
  for (std::size_t i = 0; i < entity_id.size(); ++i) {
    const auto byte = static_cast<unsigned char>(entity_id[i]);
    if (byte < 0x20 || byte == 0x7F) {
      throw InvalidArgument(fmt::format(
          "entity id contains control character 0x{:02X} at byte {}; ids must be printable", byte,
          i));
    }
  }
}

std::string effect_key(const EffectType& type, std::string_view entity_id) {
  validate_entity_id(entity_id);
  return fmt::format("effect:{}:{}", type.name(), entity_id);
}

}  // namespace prodsafe::idempotency
