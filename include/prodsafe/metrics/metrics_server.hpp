// Serves a Registry at GET /metrics in the Prometheus text format 0.0.4, on
// its own thread, for a Prometheus server to scrape.
//
//   MetricsServer server(registry, {.port = 9464});
//   // curl http://127.0.0.1:9464/metrics
//
// Thread safety: construct and destroy from one thread; serving runs on the
// server's threads and reads the registry, which is thread-safe.
#pragma once

#include <memory>
#include <string>

#include "prodsafe/metrics/registry.hpp"

namespace prodsafe::metrics {

struct MetricsServerOptions {
  // Default: 127.0.0.1 (loopback only). "0.0.0.0" listens on every interface.
  std::string host = "127.0.0.1";
  // Default: 0, a free port chosen by the system (see port()).
  int port = 0;
};

class MetricsServer {
 public:
  // Starts listening; throws StoreUnavailable (naming host and port) when the
  // address cannot be bound. `registry` must outlive the server.
  explicit MetricsServer(const Registry& registry, MetricsServerOptions options = {});
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
