#include "prodsafe/redis/endpoint.hpp"

#include <charconv>
#include <climits>
#include <optional>

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

// Calls visit(name, value) for each "name=value" of a query string, in order.
template <typename Visit>
void for_each_param(std::string_view query, Visit&& visit) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const std::size_t eq = param.find('=');
    visit(param.substr(0, eq), eq == std::string_view::npos ? "" : param.substr(eq + 1));
  }
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

// Parses "host[:port]" (an IPv6 host in brackets) with `default_port`.
HostPort parse_server(std::string_view url, std::string_view authority, int default_port,
                      std::string_view example) {
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
  if (host.empty()) fail(url, "the host is missing", example);
  HostPort server{std::string(host), default_port};
  if (has_port && !parse_int(port, 1, 65535, server.port)) {
    fail(url, fmt::format("port '{}' is not a number from 1 to 65535", port));
  }
  return server;
}

void parse_db(std::string_view url, std::string_view path, Endpoint& endpoint) {
  if (path.size() <= 1) return;
  const std::string_view db = path.substr(1);
  if (!parse_int(db, 0, INT_MAX, endpoint.db)) {
    fail(url, fmt::format("database '{}' is not a non-negative number", db),
         "redis://host:6379/2 selects database 2");
  }
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
  if (authority.find(',') != std::string_view::npos) {
    fail(url, "a redis:// or rediss:// URL names one server",
         "list sentinels with redis-sentinel://h1,h2?master=NAME, cluster nodes with "
         "redis-cluster://h1,h2");
  }
  HostPort server = parse_server(url, authority, 6379, "redis://127.0.0.1:6379");
  endpoint.host = server.host;
  endpoint.port = server.port;
  endpoint.servers.push_back(std::move(server));
  parse_db(url, path, endpoint);
}

// redis-sentinel://[[user]:password@]h1[:p1][,h2[:p2]...][/db]?master=NAME
// redis-cluster://[[user]:password@]h1[:p1][,h2[:p2]...]
void parse_server_list(std::string_view url, std::string_view rest, Endpoint& endpoint) {
  const bool sentinel = endpoint.topology == Endpoint::Topology::kSentinel;
  const std::string_view example =
      sentinel ? "redis-sentinel://10.0.0.1:26379,10.0.0.2:26379?master=mymaster"
               : "redis-cluster://10.0.0.1:7000,10.0.0.2:7000";
  rest = take_credentials(url, rest, endpoint);
  const std::size_t question = rest.find('?');
  const std::string_view before_query = rest.substr(0, question);
  const std::string_view query =
      question == std::string_view::npos ? std::string_view{} : rest.substr(question + 1);
  const std::size_t slash = before_query.find('/');
  std::string_view list = before_query.substr(0, slash);
  const std::string_view path =
      slash == std::string_view::npos ? std::string_view{} : before_query.substr(slash);
  for (;;) {
    const std::size_t comma = list.find(',');
    endpoint.servers.push_back(
        parse_server(url, list.substr(0, comma), sentinel ? 26379 : 6379, example));
    if (comma == std::string_view::npos) break;
    list = list.substr(comma + 1);
  }
  endpoint.host = endpoint.servers.front().host;
  endpoint.port = endpoint.servers.front().port;
  parse_db(url, path, endpoint);
  if (!sentinel) {
    if (!query.empty()) {
      fail(url, "query parameters are not supported in redis-cluster:// URLs", example);
    }
    if (endpoint.db != 0) {
      fail(url, "Redis Cluster has database 0 only", "drop the /db from the URL");
    }
    return;
  }
  bool named = false;
  for_each_param(query, [&](std::string_view name, std::string_view value) {
    if (name != "master") {
      fail(url, fmt::format("unknown query parameter '{}'", name),
           "only ?master=NAME is supported; write the database as a path: /2");
    }
    if (named) fail(url, "the master is named more than once");
    endpoint.master_name = percent_decode(url, value, "master name");
    named = true;
  });
  if (endpoint.master_name.empty()) {
    fail(url, "a redis-sentinel:// URL needs the master's name, as the sentinels know it", example);
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
  for_each_param(rest.substr(question + 1), [&](std::string_view name, std::string_view value) {
    if (name != "db") {
      fail(url, fmt::format("unknown query parameter '{}'", name), "only ?db=N is supported");
    }
    if (!parse_int(value, 0, INT_MAX, endpoint.db)) {
      fail(url, fmt::format("database '{}' is not a non-negative number", value));
    }
  });
}

// The topology a scheme names: redis[s]-sentinel, redis[s]+sentinel,
// redis[s]-cluster, redis[s]+cluster.
std::optional<Endpoint::Topology> topology_scheme(std::string_view scheme) {
  for (const std::string_view prefix : {"rediss", "redis"}) {
    if (!scheme.starts_with(prefix) || scheme.size() <= prefix.size()) continue;
    const char separator = scheme[prefix.size()];
    const std::string_view kind = scheme.substr(prefix.size() + 1);
    if (separator != '-' && separator != '+') return std::nullopt;
    if (kind == "sentinel") return Endpoint::Topology::kSentinel;
    if (kind == "cluster") return Endpoint::Topology::kCluster;
    return std::nullopt;
  }
  return std::nullopt;
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
  } else if (const auto topology = topology_scheme(scheme)) {
    endpoint.topology = *topology;
    endpoint.tls = scheme.starts_with("rediss");
    parse_server_list(url, rest, endpoint);
  } else {
    fail(url, fmt::format("unsupported scheme '{}'", scheme),
         "use redis://, rediss:// (TLS), unix://, redis-sentinel:// or redis-cluster://");
  }
  return endpoint;
}

namespace {

// `text` with every byte outside RFC 3986's unreserved set percent-encoded,
// so that parse_url reads it back unchanged.
std::string percent_encode(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
        (byte >= '0' && byte <= '9') || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", byte);
    }
  }
  return out;
}

}  // namespace

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
  if (!password.empty()) credentials = fmt::format("{}:***@", percent_encode(user));
  if (transport == Transport::kUnix) {
    std::string url = fmt::format("unix://{}{}", credentials, socket_path);
    if (db != 0) url += fmt::format("?db={}", db);
    return url;
  }
  if (topology != Topology::kStandalone) {
    std::string url =
        fmt::format("{}-{}://{}", tls ? "rediss" : "redis",
                    topology == Topology::kSentinel ? "sentinel" : "cluster", credentials);
    for (std::size_t i = 0; i < servers.size(); ++i) {
      if (i > 0) url += ',';
      url += servers[i].str();
    }
    if (db != 0) url += fmt::format("/{}", db);
    if (topology == Topology::kSentinel)
      url += fmt::format("?master={}", percent_encode(master_name));
    return url;
  }
  const std::string_view scheme = tls ? "rediss" : "redis";
  const bool ipv6 = host.find(':') != std::string::npos;
  std::string url = ipv6 ? fmt::format("{}://{}[{}]:{}", scheme, credentials, host, port)
                         : fmt::format("{}://{}{}:{}", scheme, credentials, host, port);
  if (db != 0) url += fmt::format("/{}", db);
  return url;
}

Endpoint Endpoint::server(const HostPort& address) const {
  Endpoint one;
  one.host = address.host;
  one.port = address.port;
  one.servers = {address};
  one.user = user;
  one.password = password;
  one.db = db;
  one.tls = tls;
  return one;
}

}  // namespace prodsafe::redis

namespace prodsafe::redis {

std::string HostPort::str() const {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                             : fmt::format("{}:{}", host, port);
}

}  // namespace prodsafe::redis
