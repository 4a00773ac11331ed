// Where a Redis server is and how to log in: parsed from a URL.
//
//   redis://[[user]:password@]host[:port][/db]
//   rediss://[[user]:password@]host[:port][/db]     TLS over TCP
//   unix://[[user]:password@]/path/to/redis.sock[?db=N]
//   redis-sentinel://[[user]:password@]host1[:port1][,host2[:port2]...][/db]?master=NAME
//   redis-cluster://[[user]:password@]host1[:port1][,host2[:port2]...]
//
// A sentinel URL lists the sentinels to ask for the master named NAME (port
// 26379 unless given; also written redis+sentinel://); the credentials and the
// database are the master's (the sentinels' own are Options::sentinel). A
// cluster URL lists seed nodes from which the cluster's topology is
// discovered (port 6379 unless given; also redis+cluster://); a cluster has
// database 0 only. rediss-sentinel:// and rediss-cluster:// speak TLS to
// every server.
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
#include <vector>

namespace prodsafe::redis {

struct HostPort {
  std::string host;
  int port = 0;

  // "host:port", with an IPv6 host in brackets.
  [[nodiscard]] std::string str() const;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

struct Endpoint {
  enum class Transport { kTcp, kUnix };
  // One server (redis://, rediss://, unix://), a master found through
  // Sentinel, or a Redis Cluster.
  enum class Topology { kStandalone, kSentinel, kCluster };

  Topology topology = Topology::kStandalone;
  Transport transport = Transport::kTcp;
  // TCP: the servers the URL lists, in order: the one server, the sentinels,
  // or the cluster's seed nodes. Empty for a unix socket.
  std::vector<HostPort> servers;
  // Sentinel only: the master's name, as the sentinels know it.
  std::string master_name;
  // TCP only: the (first) server's host. Default: 127.0.0.1.
  std::string host = "127.0.0.1";
  // TCP only: the (first) server's port. Default: 6379.
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

  // One TCP server of this topology (the server itself, a sentinel, a node of
  // a cluster, the master the sentinels name) as a one-server endpoint with
  // this endpoint's credentials, database and TLS.
  [[nodiscard]] Endpoint server(const HostPort& address) const;
};

// Parses a Redis URL. Throws prodsafe::InvalidArgument naming what is wrong
// (the URL in the message has its password redacted).
[[nodiscard]] Endpoint parse_url(std::string_view url);

// `url` with any password replaced by "***", for text that must quote a URL
// which may not even parse. Leaves strings without credentials unchanged.
[[nodiscard]] std::string redact_url(std::string_view url);

}  // namespace prodsafe::redis
