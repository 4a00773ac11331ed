// What a webhook endpoint answers, as it reaches a log line
// (src/alerts/log_excerpt.hpp): log_excerpt and url_secrets never throw; the
// excerpt is bounded, printable UTF-8 without control characters, and never
// holds a secret that was in the answer.
//
// Input: one byte of flags, a secret up to the first '\n', then the body. The
// secret is mapped onto the letters G to Z, which no escape (\xNN, \u{NNNN},
// \n, \t) and no "***" can produce, so a secret in the excerpt is a leak.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "log_excerpt.hpp"

namespace {

using prodsafe::fuzz::require;

// True when `text` is valid UTF-8 without C0 controls or DEL.
bool printable_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return false;
      ++i;
      continue;
    }
    const int length = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (length == 0 || c > 0xf4 || i + length > text.size()) return false;
    for (int k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool truncated = (data[0] & 1) != 0;
  const std::size_t limit = 16 + (data[0] >> 1) * 8;  // 16 to 1,032 bytes
  const std::string_view rest = prodsafe::fuzz::as_text(data + 1, size - 1);
  const std::size_t newline = rest.find('\n');
  std::string secret;
  std::string_view body = rest;
  if (newline != std::string_view::npos) {
    for (unsigned char c : rest.substr(0, newline)) secret += static_cast<char>('G' + c % 20);
    body = rest.substr(newline + 1);
  }
  const std::string excerpt =
      prodsafe::alerts::detail::log_excerpt(body, truncated, {secret}, limit);
  // The note after a cut ("... [cut; the answer has over N bytes]") is extra.
  require(excerpt.size() <= limit + 64, "the excerpt is over its limit", excerpt);
  require(printable_utf8(excerpt), "the excerpt is not printable UTF-8", excerpt);
  if (secret.size() >= 4) {
    require(excerpt.find(secret) == std::string::npos, "the excerpt shows the secret", excerpt);
  }
  for (const std::string& part : prodsafe::alerts::detail::url_secrets(body)) {
    require(!part.empty(), "url_secrets returned an empty secret", body);
  }
  return 0;
}
