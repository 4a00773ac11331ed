// Text for redis.conf lines and URLs that the topologies write. Private to
// prodsafe::embedded.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include <fmt/format.h>

namespace prodsafe::embedded::detail {

// `value` as one redis.conf argument: in double quotes, '"' and '\' escaped.
inline std::string conf_quoted(std::string_view value) {
  std::string out = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// `value` with every byte but RFC 3986's unreserved ones percent-encoded, for
// the user-info part of a URL.
inline std::string percent_encoded(std::string_view value) {
  std::string out;
  for (const char c : value) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += c;
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

}  // namespace prodsafe::embedded::detail
