#include "prodsafe/redis/endpoint.hpp"

#include <charconv>
#include <climits>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::redis {
namespace {

// sockaddr_un::sun_path holds 108 bytes including the terminating NUL.
constexpr std::size_t kMaxSocketPath = 107;

[[noreturn]] void fail(std::string_view url, std::string_view what, std::string_view hint = {}) {
  std::string message = fmt::format("invalid Redis URL '{}': {}", redact_url(url), what);
  if (!hint.empty()) message += fmt::format(" ({})", hint);
  throw InvalidArgument(message);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view url, std::string_view text, std::string_view field) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    const int high = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
    const int low = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
    if (high < 0 || low < 0) {
      fail(url, fmt::format("bad percent-encoding in the {}", field), "write a literal '%' as %25");
    }
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

// Parses a decimal number in [min, max] into `out`; false when it is not one.
bool parse_int(std::string_view text, long min, long max, int& out) {
  if (text.empty()) return false;
  long value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || value < min || value > max) return false;
  out = static_cast<int>(value);
  return true;
}

// Splits "[[user]:password@]rest" and fills user and password.
std::string_view take_credentials(std::string_view url, std::string_view rest, Endpoint& endpoint) {
  const std::size_t at = rest.rfind('@');
  if (at == std::string_view::npos) return rest;
  const std::string_view userinfo = rest.substr(0, at);
  const std::size_t colon = userinfo.find(':');
  if (colon == std::string_view::npos) {
    fail(url, "credentials must be written 'user:password@' or ':password@'",
         "a password alone needs a leading ':'");
  }
  endpoint.user = percent_decode(url, userinfo.substr(0, colon), "user name");
  endpoint.password = percent_decode(url, userinfo.substr(colon + 1), "password");
  if (endpoint.password.empty()) fail(url, "the password after ':' is empty");
  return rest.substr(at + 1);
}

void parse_tcp(std::string_view url, std::string_view rest, Endpoint& endpoint) {
  rest = take_credentials(url, rest, endpoint);
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (authority.find('?') != std::string_view::npos || path.find('?') != std::string_view::npos) {
    fail(url, "query parameters are not supported in redis:// and rediss:// URLs",
         "write the database as a path: redis://host:6379/2");
  }

  std::string_view host;
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) fail(url, "an IPv6 host is missing its closing ']'");
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') fail(url, "unexpected text after the IPv6 host");
      port = after.substr(1);
      has_port = true;
    }
  } else {
    const std::size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      if (host.find(':') != std::string_view::npos) {
        fail(url, "an IPv6 host must be written in brackets", "redis://[::1]:6379");
      }
      port = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (host.empty()) fail(url, "the host is missing", "redis://127.0.0.1:6379");
  endpoint.host = std::string(host);
  if (has_port && !parse_int(port, 1, 65535, endpoint.port)) {
    fail(url, fmt::format("port '{}' is not a number from 1 to 65535", port));
  }
  if (path.size() > 1) {
    const std::string_view db = path.substr(1);
    if (!parse_int(db, 0, INT_MAX, endpoint.db)) {
      fail(url, fmt::format("database '{}' is not a non-negative number", db),
           "redis://host:6379/2 selects database 2");
    }
  }
}

void parse_unix(std::string_view url, std::string_view rest, Endpoint& endpoint) {
  endpoint.transport = Endpoint::Transport::kUnix;
  endpoint.host.clear();
  endpoint.port = 0;
  rest = take_credentials(url, rest, endpoint);
  const std::size_t question = rest.find('?');
  const std::string_view path = rest.substr(0, question);
  if (path.empty() || path.front() != '/') {
    fail(url, "the socket path must be absolute", "unix:///run/redis/redis.sock");
  }
  if (path.size() == 1) fail(url, "the socket path is missing", "unix:///run/redis/redis.sock");
  endpoint.socket_path = percent_decode(url, path, "socket path");
  if (endpoint.socket_path.size() > kMaxSocketPath) {
    fail(url, fmt::format("the socket path is {} bytes long; unix sockets allow at most {}",
                          endpoint.socket_path.size(), kMaxSocketPath));
  }
  if (question == std::string_view::npos) return;
  std::string_view query = rest.substr(question + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const std::size_t eq = param.find('=');
    const std::string_view name = param.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : param.substr(eq + 1);
    if (name != "db") {
      fail(url, fmt::format("unknown query parameter '{}'", name), "only ?db=N is supported");
    }
    if (!parse_int(value, 0, INT_MAX, endpoint.db)) {
      fail(url, fmt::format("database '{}' is not a non-negative number", value));
    }
  }
}

}  // namespace

Endpoint parse_url(std::string_view url) {
  const std::size_t sep = url.find("://");
  if (url.empty()) fail(url, "the URL is empty", "redis://127.0.0.1:6379");
  if (sep == std::string_view::npos) {
    fail(url, "the scheme is missing", "write redis://host:port or unix:///path/to.sock");
  }
  const std::string_view scheme = url.substr(0, sep);
  const std::string_view rest = url.substr(sep + 3);
  Endpoint endpoint;
  if (scheme == "redis") {
    parse_tcp(url, rest, endpoint);
  } else if (scheme == "unix") {
    parse_unix(url, rest, endpoint);
  } else if (scheme == "rediss") {
    if (rest.starts_with('/')) {
      fail(url, "rediss:// (TLS) is for TCP and needs a host",
           "a unix socket has no TLS form: write unix:///path/to.sock");
    }
    endpoint.tls = true;
    parse_tcp(url, rest, endpoint);
  } else {
    fail(url, fmt::format("unsupported scheme '{}'", scheme),
         "use redis://, rediss:// (TLS) or unix://");
  }
  return endpoint;
}

std::string redact_url(std::string_view url) {
  const std::size_t sep = url.find("://");
  const std::size_t start = sep == std::string_view::npos ? 0 : sep + 3;
  const std::size_t at = url.rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  const std::string_view userinfo = url.substr(start, at - start);
  const std::size_t colon = userinfo.find(':');
  // Without a ':' the whole userinfo may be a secret: hide all of it.
  const std::string_view user =
      colon == std::string_view::npos ? std::string_view{} : userinfo.substr(0, colon);
  return fmt::format("{}{}:***{}", url.substr(0, start), user, url.substr(at));
}

std::string Endpoint::redacted() const {
  std::string credentials;
  if (!password.empty()) credentials = fmt::format("{}:***@", user);
  if (transport == Transport::kUnix) {
    std::string url = fmt::format("unix://{}{}", credentials, socket_path);
    if (db != 0) url += fmt::format("?db={}", db);
    return url;
  }
  const std::string_view scheme = tls ? "rediss" : "redis";
  const bool ipv6 = host.find(':') != std::string::npos;
  std::string url = ipv6 ? fmt::format("{}://{}[{}]:{}", scheme, credentials, host, port)
                         : fmt::format("{}://{}{}:{}", scheme, credentials, host, port);
  if (db != 0) url += fmt::format("/{}", db);
  return url;
}

}  // namespace prodsafe::redis
