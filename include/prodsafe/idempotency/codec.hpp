// How results are stored: Codec<T>::encode to bytes for Redis, decode back.
//
// Provided: std::string (stored as is) and every type nlohmann::json can
// convert (to_json/from_json, including std::map, std::vector, numbers and
// your own types with NLOHMANN_DEFINE_TYPE_*). Specialize Codec for others.
// encode() throws prodsafe::EncodeError for a value it cannot store faithfully
// (a string that is not valid UTF-8, a NaN or infinite number: JSON has no
// such values); decode() throws prodsafe::DecodeError when the bytes are not
// a T (for integers, directly or in standard containers, also for a number
// that is not an integer or does not fit).
#pragma once

#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

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

// The integer type whose values T holds, directly or in standard containers
// (Codec<std::map<std::string, long long>> holds long long); void if none.
template <class T>
struct integer_leaf {
  using type = void;
};
template <class T>
requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) struct integer_leaf<T> {
  using type = T;
};
template <class T, class A>
struct integer_leaf<std::vector<T, A>> : integer_leaf<T> {};
template <class K, class T, class C, class A>
struct integer_leaf<std::map<K, T, C, A>> : integer_leaf<T> {};
template <class K, class T, class H, class E, class A>
struct integer_leaf<std::unordered_map<K, T, H, E, A>> : integer_leaf<T> {};
template <class T>
struct integer_leaf<std::optional<T>> : integer_leaf<T> {};

// Throws DecodeError at the first number in `value` that `Integer` cannot
// hold exactly: nlohmann::json would convert 1.5 to 1, 4294967296 to an int
// as 0, and 1e300 to an integer with undefined behaviour.
template <class Integer>
void require_integers(const nlohmann::json& value) {
  std::vector<const nlohmann::json*> pending{&value};  // no recursion: any depth
  while (!pending.empty()) {
    const nlohmann::json& item = *pending.back();
    pending.pop_back();
    bool fits = true;
    if (item.is_number_float()) {
      fits = false;
    } else if (item.is_number_unsigned()) {
      fits = std::in_range<Integer>(item.get<std::uint64_t>());
    } else if (item.is_number_integer()) {
      fits = std::in_range<Integer>(item.get<std::int64_t>());
    } else if (item.is_structured()) {
      for (const auto& element : item) pending.push_back(&element);
    }
    if (!fits) {
      throw DecodeError(fmt::format(
          "cannot decode a stored result: {} is not a value of the expected integer type",
          item.dump()));
    }
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
      const nlohmann::json json = nlohmann::json::parse(bytes);
      using Integer = typename detail::integer_leaf<T>::type;
      if constexpr (!std::is_void_v<Integer>) detail::require_integers<Integer>(json);
      return json.get<T>();
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
