// Serves a Registry at GET /metrics in the Prometheus text format 0.0.4, and
// GET /healthz, on one thread of its own, for a Prometheus server to scrape.
//
//   MetricsServer server(registry, {.port = 9464});
//   // curl http://127.0.0.1:9464/metrics
//
// The server is built so that its clients cannot hurt the application that
// links it: it holds at most `max_connections` sockets (file descriptors), so
// a flood of idle connections never takes the descriptors the application's
// own Redis connections need; every request must arrive whole within
// `request_timeout` and its head within `max_header_bytes`; and when all
// connections are taken, a new one replaces the one that has waited longest
// for its request, so a scrape still answers while slow clients hold the rest.
// Each response closes its connection (no keep-alive). Writes never raise
// SIGPIPE and the server changes no signal disposition. Connections closed
// before they were answered are counted in the registry served:
// prodsafe_metrics_server_dropped_connections_total{reason="evicted",
// "request_timeout", "response_timeout" or "header_too_large"}.
//
// Thread safety: construct and destroy from one thread; serving runs on the
// server's thread and reads the registry, which is thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "prodsafe/metrics/registry.hpp"

namespace prodsafe::metrics {

struct MetricsServerOptions {
  // Default: 127.0.0.1 (loopback only). "0.0.0.0" listens on every IPv4
  // interface, "::" on every interface. A name is resolved once, at start.
  std::string host = "127.0.0.1";
  // Default: 0, a free port chosen by the system (see port()). At most 65535.
  int port = 0;
  // The most connections open at once, each one file descriptor. When all
  // are taken, a new connection closes the one that has waited longest for
  // its request (one whose response is being sent goes last).
  // Default: 64. Between 1 and 10,000.
  std::size_t max_connections = 64;
  // From accept to the end of the request's head (its blank line); a client
  // that has not sent it by then gets 408 and is closed, however steadily it
  // drips bytes. Default: 5 s. Between 1 ms and 10 min.
  std::chrono::milliseconds request_timeout{5000};
  // From the end of the request to the last byte of the response: a client
  // that stops reading is closed then. Default: 10 s (Prometheus's default
  // scrape timeout). Between 1 ms and 10 min.
  std::chrono::milliseconds response_timeout{10000};
  // The largest request head (request line and headers) accepted; a larger
  // one gets 431 and is closed. Default: 8 KiB. Between 256 B and 1 MiB.
  std::size_t max_header_bytes = 8 * 1024;
};

// Throws InvalidArgument, naming the field and its valid range, when an
// option is out of range. MetricsServer calls it.
void validate_options(const MetricsServerOptions& options);

class MetricsServer {
 public:
  // Validates `options`, adds prodsafe_build_info (register_build_info) and
  // the dropped-connections counter to `registry` and starts listening. Throws InvalidArgument for
  // an option out of range, ConfigError (naming host and port) when the host does not resolve and
  // IoError when the address cannot be bound (a port in use, an address that is not local) or a
  // descriptor cannot be had. `registry` must outlive the server.
  explicit MetricsServer(Registry& registry, MetricsServerOptions options = {});
  // Stops serving and closes every connection; returns within milliseconds.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  [[nodiscard]] int port() const noexcept;
  // http://host:port/metrics
  [[nodiscard]] std::string url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace prodsafe::metrics
