// How results are stored: Codec<T>::encode to bytes for Redis, decode back.
//
// Provided: std::string (stored as is) and every type nlohmann::json can
// convert (to_json/from_json, including std::map, std::vector, numbers and
// your own types with NLOHMANN_DEFINE_TYPE_*). Specialize Codec for others.
// encode() throws prodsafe::EncodeError for a value it cannot store faithfully
// (a string that is not valid UTF-8, a NaN or infinite number: JSON has no
// such values); decode() throws prodsafe::DecodeError when the bytes are not
// a T.
#pragma once

#include <cmath>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "prodsafe/core/error.hpp"

namespace prodsafe::idempotency {

namespace detail {

// Throws EncodeError at the first number JSON cannot hold (NaN, infinity):
// nlohmann::json would write it as null and hand back something else.
inline void require_finite_numbers(const nlohmann::json& value) {
  if (value.is_number_float() && !std::isfinite(value.get<double>())) {
    throw EncodeError(
        fmt::format("the result holds {}, which JSON cannot represent", value.get<double>()));
  }
  if (value.is_structured()) {
    for (const auto& item : value) require_finite_numbers(item);
  }
}

}  // namespace detail

template <class T, class Enable = void>
struct Codec {
  static std::string encode(const T& value) {
    try {
      const nlohmann::json json(value);
      detail::require_finite_numbers(json);
      return json.dump();  // throws on a string that is not valid UTF-8
    } catch (const nlohmann::json::exception& error) {
      throw EncodeError(fmt::format("cannot encode the result as JSON: {}", error.what()));
    }
  }
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
