// Where a Redis server is and how to log in: parsed from a URL.
//
//   redis://[[user]:password@]host[:port][/db]
//   rediss://[[user]:password@]host[:port][/db]     TLS over TCP
//   unix://[[user]:password@]/path/to/redis.sock[?db=N]
//
// The user and password may be percent-encoded (%40 for '@'); an IPv6 host is
// written in brackets: redis://[::1]:6379. rediss:// sets Endpoint::tls; the
// CA, client certificate and SNI are in redis::TlsOptions. A unix socket has
// no TLS form (validate_tls_endpoint refuses TLS for one).
//
// Thread safety: Endpoint is a plain value; parse_url() is a pure function.
#pragma once

#include <string>
#include <string_view>

namespace prodsafe::redis {

struct Endpoint {
  enum class Transport { kTcp, kUnix };

  Transport transport = Transport::kTcp;
  // TCP only. Default: 127.0.0.1.
  std::string host = "127.0.0.1";
  // TCP only. Default: 6379.
  int port = 6379;
  // Unix sockets only: the socket's path.
  std::string socket_path;
  // ACL user name. Empty: the "default" user (AUTH with the password alone).
  std::string user;
  // Empty: no AUTH is sent.
  std::string password;
  // Database selected after connecting. Default: 0 (no SELECT is sent).
  int db = 0;
  // TCP only: speak TLS (a rediss:// URL). See TlsOptions for the settings.
  bool tls = false;

  // The endpoint as a URL with the password replaced by "***" (rediss:// when
  // `tls`): safe for logs and error messages.
  [[nodiscard]] std::string redacted() const;
};

// Parses a Redis URL. Throws prodsafe::InvalidArgument naming what is wrong
// (the URL in the message has its password redacted).
[[nodiscard]] Endpoint parse_url(std::string_view url);

// `url` with any password replaced by "***", for text that must quote a URL
// which may not even parse. Leaves strings without credentials unchanged.
[[nodiscard]] std::string redact_url(std::string_view url);

}  // namespace prodsafe::redis
