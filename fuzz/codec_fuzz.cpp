// Result decoding (prodsafe/idempotency/codec.hpp): a stored result read back
// as several result types either decodes or throws DecodeError; a decoded
// value encodes again (or throws EncodeError) and decodes to the same value.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_support.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/idempotency/codec.hpp"

namespace {

template <class T>
void round_trip(std::string_view bytes) {
  using Codec = prodsafe::idempotency::Codec<T>;
  std::optional<T> decoded;
  try {
    decoded = Codec::decode(bytes);
  } catch (const prodsafe::DecodeError&) {
    return;
  }
  std::string encoded;
  try {
    encoded = Codec::encode(*decoded);
  } catch (const prodsafe::EncodeError&) {
    return;  // a value JSON cannot hold (an infinite number); encode says so
  }
  T again;
  try {
    again = Codec::decode(encoded);
  } catch (const prodsafe::DecodeError&) {
    prodsafe::fuzz::finding("a value the codec encoded does not decode");
  }
  prodsafe::fuzz::require(again == *decoded, "a decoded value does not round-trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = prodsafe::fuzz::as_text(data, size);
  round_trip<std::string>(bytes);
  round_trip<nlohmann::json>(bytes);
  round_trip<long long>(bytes);
  round_trip<bool>(bytes);
  round_trip<std::vector<std::string>>(bytes);
  round_trip<std::map<std::string, long long>>(bytes);
  // double: NaN never decodes (JSON has none), so == is meaningful.
  round_trip<std::map<std::string, double>>(bytes);
  return 0;
}
