// Connection and pool settings for prodsafe::redis::Client.
//
// Every duration is at most kMaxOptionDuration (24 h): longer ones overflow
// when added to a time point or turned into a socket timeout, and "wait
// forever" is spelled 0 where it is allowed.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace prodsafe::redis {

struct Endpoint;

inline constexpr std::chrono::milliseconds kMaxOptionDuration = std::chrono::hours(24);

// TLS to the server (managed Redis with in-transit encryption). On when the
// URL is rediss:// or `enabled` is set. Peer verification is on by default:
// the server's certificate must chain to a trusted CA and name the host (the
// URL's host, or `sni`) in its subject alternative names.
struct TlsOptions {
  // Use TLS even for a redis:// URL. Default: false.
  bool enabled = false;
  // PEM file of CA certificates to trust. Empty: `ca_dir`, or (both empty)
  // the system's default store.
  std::string ca_file{};
  // Directory of hashed CA certificates (openssl rehash). Default: none.
  std::string ca_dir{};
  // Client certificate and its private key (PEM), for servers that demand one
  // (tls-auth-clients yes). Both or neither. Default: none.
  std::string cert_file{};
  std::string key_file{};
  // Server name sent in the handshake (SNI) and checked against the
  // certificate. Default: empty, the URL's host.
  std::string sni{};
  // Check the server's certificate and name. false accepts any server, which
  // anyone on the path can impersonate; prodsafe logs a warning once per
  // process. Default: true.
  bool verify_peer = true;
};

// How a redis-sentinel:// client finds its master (see client.hpp).
struct SentinelOptions {
  // The sentinels' own credentials (their requirepass, or an ACL user), which
  // are separate from the master's (the URL's). Default: none, no AUTH.
  std::optional<std::string> user{};
  std::optional<std::string> password{};
  // Time allowed for one sentinel to connect and answer before the next one
  // is asked; 1 ms to 24 h. Default: 250 ms. The whole resolution, and the
  // connect to the master it names, also stay within connect_timeout.
  std::chrono::milliseconds timeout{250};
  // Subscribe to the sentinels' +switch-master announcements from a
  // background thread and drop pooled connections to the old master as soon
  // as one arrives. Only a hint: without it, a READONLY reply, an I/O error
  // or a timeout on the old master leads to a new resolution just the same.
  // Default: true.
  bool watch_switch = true;
};

struct Options {
  // Time allowed to open a connection, including the TLS handshake, AUTH and
  // SELECT; 0 to 24 h. Default: 1 s. 0 means no limit: a server that accepts
  // the connection and then never answers (a paused one) hangs the caller.
  std::chrono::milliseconds connect_timeout{1000};
  // Time allowed for one command's (or one pipeline's) reply to arrive; 0 to
  // 24 h. Default: 1 s. 0 means wait forever (a paused server then hangs the
  // caller).
  std::chrono::milliseconds command_timeout{1000};
  // Most connections the pool opens. Default: 8. Must be at least 1.
  std::size_t pool_size = 8;
  // Time a caller waits for a free connection when all are in use; then the
  // call fails with prodsafe::Timeout; 0 to 24 h. Default: 1 s. 0 means wait
  // forever.
  std::chrono::milliseconds pool_checkout_timeout{1000};
  // After a failed connect, the next attempt waits this long, doubling on each
  // further failure up to reconnect_backoff_max; a success resets it.
  // Callers that arrive inside the wait block until it ends if their checkout
  // deadline allows, else they fail at once with StoreUnavailable.
  // Each 0 to 24 h. Defaults: 50 ms and 1 s. 0 for the initial value means no
  // backoff.
  std::chrono::milliseconds reconnect_backoff_initial{50};
  std::chrono::milliseconds reconnect_backoff_max{1000};
  // Prepended to every key that prodsafe's modules build (Client::key()), so
  // tenants sharing a server stay apart. Default: empty.
  std::string key_prefix{};
  // Credentials that override the URL's. Default: use the URL's.
  std::optional<std::string> user{};
  std::optional<std::string> password{};
  // TLS settings; see TlsOptions. Used for every server of a sentinel or
  // cluster URL.
  TlsOptions tls{};
  // Sentinel settings, for redis-sentinel:// URLs; see SentinelOptions.
  SentinelOptions sentinel{};
};

// Throws InvalidArgument, naming the field and its range, when an option is
// out of the range its comment gives, and checks `options.tls` with
// validate_tls_options(). Connection and ConnectionPool (so Client) call it,
// and validate_tls_endpoint(), before they use `options`.
void validate_options(const Options& options);

// Checks `tls` without touching the network or parsing any certificate:
// - cert_file without key_file, or the reverse: InvalidArgument naming both;
// - sni that is not a host name (letters, digits, '-' and '.', labels of 1
//   to 63 characters not starting or ending with '-', at most 253 in all):
//   InvalidArgument;
// - ca_file, cert_file or key_file that is not a readable file, or ca_dir
//   that is not a readable, searchable directory: ConfigError naming the
//   path and the field.
// Each message names the field as redis::Options::tls.<field>.
void validate_tls_options(const TlsOptions& tls);

// Checks that `tls` fits `endpoint`. TLS is on when endpoint.tls (a rediss://
// URL) or tls.enabled is set. Throws InvalidArgument when TLS is on for a
// unix socket (TLS is for TCP), or when a CA, a client certificate or key,
// or an SNI name is set while TLS is off (the connection would be plain
// text, which the settings suggest was not meant).
void validate_tls_endpoint(const Endpoint& endpoint, const TlsOptions& tls);

}  // namespace prodsafe::redis
