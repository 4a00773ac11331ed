// Redis URLs (prodsafe/redis/endpoint.hpp): parse_url returns an endpoint or
// throws InvalidArgument; an endpoint written back as a URL parses to the same
// endpoint; neither redacted() nor an error message shows the password.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "fuzz_support.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/endpoint.hpp"

namespace {

using prodsafe::fuzz::require;
using prodsafe::redis::Endpoint;

std::string percent_encode(std::string_view text, bool keep_slash) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '.' || c == '-' || c == '_' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string to_url(const Endpoint& e) {
  std::string credentials;
  if (!e.password.empty()) {
    credentials = percent_encode(e.user, false) + ":" + percent_encode(e.password, false) + "@";
  }
  if (e.transport == Endpoint::Transport::kUnix) {
    return fmt::format("unix://{}{}?db={}", credentials, percent_encode(e.socket_path, true), e.db);
  }
  const bool brackets = e.host.find(':') != std::string::npos || e.host.starts_with('[');
  const std::string host = brackets ? "[" + e.host + "]" : e.host;
  return fmt::format("{}://{}{}:{}/{}", e.tls ? "rediss" : "redis", credentials, host, e.port,
                     e.db);
}

bool same(const Endpoint& a, const Endpoint& b) {
  return a.transport == b.transport && a.host == b.host && a.port == b.port &&
         a.socket_path == b.socket_path && a.user == b.user && a.password == b.password &&
         a.db == b.db && a.tls == b.tls;
}

// `url` with its password (or the whole userinfo) replaced by kMarker, or ""
// when it has no credentials or the marker would appear anywhere else in it.
constexpr std::string_view kMarker = "Pw-Q7zX9";

std::string with_marker_password(std::string_view url) {
  const std::size_t sep = url.find("://");
  const std::size_t at = url.rfind('@');
  if (sep == std::string_view::npos || at == std::string_view::npos || at < sep + 3) return {};
  const std::string_view userinfo = url.substr(sep + 3, at - sep - 3);
  const std::size_t colon = userinfo.find(':');
  const std::string_view user = colon == std::string_view::npos ? "" : userinfo.substr(0, colon);
  std::string marked = std::string(url.substr(0, sep + 3)) + std::string(user) + ":" +
                       std::string(kMarker) + std::string(url.substr(at));
  if (marked.find(kMarker) != marked.rfind(kMarker)) return {};
  return marked;
}

// A URL with the marker as its password: no message and no redacted() shows it.
void check_password_is_never_shown(std::string_view url) {
  const std::string marked = with_marker_password(url);
  if (marked.empty()) return;
  Endpoint endpoint;
  try {
    endpoint = prodsafe::redis::parse_url(marked);
  } catch (const prodsafe::InvalidArgument& error) {
    require(std::string_view(error.what()).find(kMarker) == std::string_view::npos,
            "an error message shows the URL's password", error.what());
    return;
  }
  require(endpoint.password == kMarker, "the password was not read whole");
  // (unless the percent-decoded user name spells it)
  require(endpoint.redacted().find(kMarker) == std::string::npos ||
              endpoint.user.find(kMarker) != std::string::npos,
          "redacted() shows the password");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view url = prodsafe::fuzz::as_text(data, size);
  check_password_is_never_shown(url);
  Endpoint endpoint;
  try {
    endpoint = prodsafe::redis::parse_url(url);
  } catch (const prodsafe::InvalidArgument& error) {
    // "invalid Redis URL '<the URL, password redacted>': <what, with a hint>"
    const std::string quoted = "invalid Redis URL '" + prodsafe::redis::redact_url(url) + "': ";
    // what() is a C string: it ends at a NUL the URL may hold.
    require(std::string_view(error.what())
                .starts_with(std::string_view(quoted).substr(0, quoted.find('\0'))),
            "an error message does not quote the redacted URL", error.what());
    return 0;
  }
  require(endpoint.port >= 0 && endpoint.port <= 65535, "a port out of range was accepted");
  require(endpoint.db >= 0, "a negative database was accepted");
  Endpoint again;
  try {
    again = prodsafe::redis::parse_url(to_url(endpoint));
  } catch (const prodsafe::InvalidArgument&) {
    prodsafe::fuzz::finding("an endpoint written back as a URL does not parse");
  }
  require(same(again, endpoint), "an endpoint written back as a URL parses differently");
  return 0;
}
