#include "log_excerpt.hpp"

#include <algorithm>
#include <cstdint>

#include <fmt/format.h>

namespace prodsafe::alerts::detail {
namespace {

constexpr std::size_t kShortestSecret = 4;

// The code point of the well-formed UTF-8 sequence at the start of `text` and
// its length, or length 0 when it is ill-formed (overlong, surrogate, past
// U+10FFFF, cut short).
std::pair<std::uint32_t, std::size_t> decode(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[i]); };
  const std::uint8_t lead = byte(0);
  std::size_t length = 0;
  std::uint32_t code = 0;
  std::uint32_t minimum = 0;
  if (lead < 0x80) return {lead, 1};
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, code = lead & 0x1fu, minimum = 0x80;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, code = lead & 0x0fu, minimum = 0x800;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, code = lead & 0x07u, minimum = 0x10000;
  } else {
    return {0, 0};
  }
  if (text.size() < length) return {0, 0};
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xc0u) != 0x80u) return {0, 0};
    code = (code << 6) | (byte(i) & 0x3fu);
  }
  if (code < minimum || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return {0, 0};
  return {code, length};
}

// C1 controls and the bidirectional controls that reorder how a line reads.
bool hidden(std::uint32_t code) {
  return (code >= 0x80 && code <= 0x9f) || (code >= 0x202a && code <= 0x202e) ||
         (code >= 0x2066 && code <= 0x2069) || code == 0x200e || code == 0x200f || code == 0x061c;
}

std::string redact(std::string text, const std::vector<std::string>& secrets) {
  std::vector<std::string> longest_first;
  for (const auto& secret : secrets) {
    if (secret.size() >= kShortestSecret) longest_first.push_back(secret);
  }
  std::sort(longest_first.begin(), longest_first.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& secret : longest_first) {
    for (std::size_t at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + 3)) {
      text.replace(at, secret.size(), "***");
    }
  }
  return text;
}

}  // namespace

std::string log_excerpt(std::string_view body, bool truncated,
                        const std::vector<std::string>& secrets, std::size_t limit) {
  const bool longer_answer = truncated;
  std::size_t longest = 0;
  for (const auto& secret : secrets) longest = std::max(longest, secret.size());
  std::string_view kept = body;
  // The answer's end may hold the start of a secret whose rest was not read.
  if (truncated && longest > 0) kept.remove_suffix(std::min(kept.size(), longest - 1));
  const std::string redacted = redact(std::string(kept), secrets);

  std::string out;
  bool cut = false;
  std::string_view rest = redacted;
  while (!rest.empty()) {
    std::string piece;
    const auto [code, length] = decode(rest);
    if (length == 0) {
      piece = fmt::format("\\x{:02x}", static_cast<std::uint8_t>(rest.front()));
    } else if (code == '\n') {
      piece = "\\n";
    } else if (code == '\r') {
      piece = "\\r";
    } else if (code == '\t') {
      piece = "\\t";
    } else if (code == '\\') {
      piece = "\\\\";
    } else if (code < 0x20 || code == 0x7f) {
      piece = fmt::format("\\x{:02x}", code);
    } else if (hidden(code)) {
      piece = fmt::format("\\u{{{:04x}}}", code);
    } else {
      piece = std::string(rest.substr(0, length));
    }
    if (out.size() + piece.size() > limit) {
      cut = true;
      break;
    }
    out += piece;
    rest.remove_prefix(length == 0 ? 1 : length);
  }
  if (cut || longer_answer) {
    out += fmt::format("... [cut; the answer has {}{} bytes]", longer_answer ? "over " : "",
                       body.size());
  }
  return out;
}

std::vector<std::string> url_secrets(std::string_view url) {
  std::vector<std::string> secrets{std::string(url)};
  const std::size_t scheme_end = url.find("://");
  const std::size_t start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  const std::size_t path = std::min(url.find_first_of("/?#", start), url.size());
  const std::string_view authority = url.substr(start, path - start);
  std::vector<std::string_view> pieces;
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view credentials = authority.substr(0, at);
    secrets.emplace_back(credentials);
    const std::size_t colon = credentials.find(':');
    pieces.push_back(credentials.substr(0, colon));
    if (colon != std::string_view::npos) pieces.push_back(credentials.substr(colon + 1));
  }
  const std::string_view target = url.substr(path);
  if (target.size() > 1) secrets.emplace_back(target);
  for (std::string_view rest = target; !rest.empty();) {
    const std::size_t end = std::min(rest.find_first_of("/?&=#;"), rest.size());
    pieces.push_back(rest.substr(0, end));
    rest.remove_prefix(std::min(end + 1, rest.size()));
  }
  for (const std::string_view piece : pieces) {
    if (piece.size() >= 8) secrets.emplace_back(piece);
  }
  std::erase_if(secrets, [](const std::string& secret) { return secret.empty(); });
  return secrets;
}

}  // namespace prodsafe::alerts::detail
