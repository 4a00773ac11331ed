// How results are stored: Codec<T>::encode to bytes for Redis, decode back.
//
// Provided: std::string (stored as is) and every type nlohmann::json can
// convert (to_json/from_json, including std::map, std::vector, numbers and
// your own types with NLOHMANN_DEFINE_TYPE_*). Specialize Codec for others.
// decode() throws prodsafe::DecodeError when the bytes are not a T.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "prodsafe/core/error.hpp"

namespace prodsafe::idempotency {

template <class T, class Enable = void>
struct Codec {
  static std::string encode(const T& value) { return nlohmann::json(value).dump(); }
  static T decode(std::string_view bytes) {
    try {
      return nlohmann::json::parse(bytes).get<T>();
    } catch (const nlohmann::json::exception& error) {
      throw DecodeError(fmt::format(
          "cannot decode a stored result as JSON for the expected type: {}", error.what()));
    }
  }
};

template <>
struct Codec<std::string> {
  static std::string encode(const std::string& value) { return value; }
  static std::string decode(std::string_view bytes) { return std::string(bytes); }
};

}  // namespace prodsafe::idempotency
