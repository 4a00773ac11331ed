// What the operator commands (breaker, effects, retry, journal) share: their
// common flags, the Redis connection they make, a bounded SCAN, durations as
// operators type them, and plain-text tables.
//
// Each command returns its process exit code (failure.hpp). With --json every
// outcome, failures included, is one JSON object on stdout, as for `check`.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "failure.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/options.hpp"

namespace prodsafe::redis {
class Client;
class Connection;
}  // namespace prodsafe::redis

namespace prodsafe::cli {

// The flags every operator command takes.
struct OpsArguments {
  std::string url{};         // --redis URL (default: $REDIS_URL, else redis://127.0.0.1:6379)
  std::string key_prefix{};  // --key-prefix: the applications' redis::Options::key_prefix
  bool json = false;         // --json
  redis::TlsOptions tls{};   // the TLS flags (tls_flags.hpp)
};

// Where an operator command's failures go: JSON on stdout with --json (with
// "url" when `redacted_url` is not empty), else a line on stderr.
[[nodiscard]] FailureOutput ops_failure_output(std::string_view command, bool json,
                                               std::string redacted_url);

// A client for an operator command: short timeouts (2 s), one connection, no
// reconnect backoff, the TLS flags and the key prefix.
[[nodiscard]] std::shared_ptr<redis::Client> ops_client(const OpsArguments& arguments);

// Redis glob `text` matches literally (escapes * ? [ ] \).
[[nodiscard]] std::string glob_escape(std::string_view text);

// A SCAN that goes on where it stopped, for a caller that spreads a walk over
// time (the dashboard): each step() is one SCAN call (MATCH `pattern` COUNT
// `count`, a bounded amount of work on the server). On a cluster it walks
// every master in turn, each over a connection of its own. A key may be seen
// twice (SCAN's guarantee is at least once for keys present throughout).
// Throws what the client throws; after a throw, step() retries the same call.
class ResumableScan {
 public:
  // On a cluster, reads CLUSTER NODES now (throws when it cannot).
  ResumableScan(redis::Client& client, std::string pattern, std::size_t count);
  ~ResumableScan();
  ResumableScan(const ResumableScan&) = delete;
  ResumableScan& operator=(const ResumableScan&) = delete;

  // The keys of the next SCAN call (possibly none); none once done().
  std::vector<std::string> step();
  [[nodiscard]] bool done() const noexcept { return done_; }

 private:
  redis::Client& client_;
  const std::string pattern_;
  const std::string count_;
  std::vector<redis::HostPort> masters_{};  // a cluster's; empty: through client_
  std::size_t master_ = 0;
  std::unique_ptr<redis::Connection> connection_{};
  std::string cursor_ = "0";
  bool done_ = false;
};

// Walks the keys matching `pattern` with SCAN cursor MATCH pattern COUNT
// `count` (never KEYS: each call does a bounded amount of work on the server).
// Calls `batch` with each SCAN reply's keys (possibly none); stops when the
// cursor comes back to 0 or `batch` returns false. A key may be seen twice
// (SCAN's guarantee is at least once for keys present throughout).
void scan_keys(redis::Client& client, std::string_view pattern, std::size_t count,
               const std::function<bool(const std::vector<std::string>&)>& batch);

// "250ms", "30s", "5m", "2h", "1d", or a whole number of seconds; nullopt for
// anything else (a negative, fractional or overflowing value included).
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// "850ms", "12.5s", "3m20s", "2h05m", "3d04h": short, for tables.
[[nodiscard]] std::string format_duration(std::chrono::milliseconds duration);

// The server's clock (TIME) in milliseconds since the epoch.
[[nodiscard]] std::int64_t server_now_ms(redis::Client& client);

// A plain-text table: a header row and rows, columns padded to their widest
// cell, two spaces apart.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  [[nodiscard]] bool empty() const noexcept { return rows_.empty(); }
  // The table, each line indented by `indent` spaces and ending in '\n'.
  [[nodiscard]] std::string str(std::size_t indent = 2) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Bytes as text for a table or message: printable ASCII as is, anything else
// escaped (\n, \xNN); cut to `max_chars` with "..." when longer.
[[nodiscard]] std::string printable(std::string_view bytes, std::size_t max_chars = 60);

// A JSON string for arbitrary bytes: the bytes when they are valid UTF-8,
// else printable(bytes, unlimited) (nlohmann::json refuses to dump invalid UTF-8).
[[nodiscard]] nlohmann::json json_bytes(std::string_view bytes);

// The start of every operator command's JSON: schema_version, exit_code, url.
[[nodiscard]] nlohmann::json ops_json(const std::string& redacted_url, int exit_code);

// Prints `out` (pretty, one object) on stdout.
void print_json(const nlohmann::json& out);

}  // namespace prodsafe::cli
