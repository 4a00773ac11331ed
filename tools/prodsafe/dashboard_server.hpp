// The server behind `prodsafe dashboard`: the embedded page, the fleet's
// state as JSON (refreshed from Redis by a thread of its own, so any number
// of open pages costs Redis one read per refresh), and, when allowed, the
// operator's actions.
//
//   GET  /                         the page (and /dashboard.css, /dashboard.js)
//   GET  /api/state                the last FleetView document, plus age_ms,
//                                  refresh_ms and actions_allowed
//   POST /api/actions/breaker      {"job_type": J, "action": "open"|"close"|"disable"|"reset"}
//                                  (a breaker that exists: 404 otherwise)
//   POST /api/actions/clear-effect {"type": T, "id": I, "force": false}
//   GET  /healthz                  "ok"
//
// Safety: the API needs `Authorization: Bearer <token>` when a token is set
// (the page takes it from its URL's #token=... fragment, which browsers never
// send to a server); without allow_remote, a request must name a loopback
// Host (a web page elsewhere cannot reach the dashboard through a DNS name
// that resolves to 127.0.0.1); an action needs allow_actions, a JSON body
// and, when the browser sends one, an Origin of this server, and is logged
// on stderr with who asked. Static files are served with a Content Security
// Policy that allows nothing but this server.
//
// An action runs on the HTTP server's thread: while Redis hangs, requests
// wait behind it for the Redis client's timeouts (2 s to connect, 2 s per
// command), then it answers 503.
//
// Thread safety: construct and destroy from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dashboard_state.hpp"
#include "ops_common.hpp"

namespace prodsafe::cli {

struct DashboardServerOptions {
  OpsArguments ops{};  // the Redis to read (url, key_prefix, tls)
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port
  bool allow_remote = false;
  bool allow_actions = false;
  std::string token{};  // empty: no token
  std::chrono::milliseconds refresh{1000};
  FleetViewOptions view{};
};

class DashboardServer {
 public:
  // Starts reading Redis and serving. Throws InvalidArgument for a
  // non-loopback host without allow_remote, ConfigError when the host does
  // not resolve and IoError when it cannot be bound.
  explicit DashboardServer(DashboardServerOptions options);
  // Stops serving and reading; returns within a refresh (or one Redis
  // timeout, if a read is under way).
  ~DashboardServer();
  DashboardServer(const DashboardServer&) = delete;
  DashboardServer& operator=(const DashboardServer&) = delete;

  [[nodiscard]] int port() const noexcept;
  // "http://127.0.0.1:8080/"
  [[nodiscard]] std::string url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "127.0.0.1:8080", "localhost:8080", "[::1]:8080", ":8080" (loopback) as
// host and port; nullopt when malformed or the port is not 0 to 65535.
[[nodiscard]] std::optional<std::pair<std::string, int>> parse_listen(std::string_view text);

// True for 127.0.0.0/8, ::1 and "localhost".
[[nodiscard]] bool is_loopback_host(std::string_view host);

}  // namespace prodsafe::cli
