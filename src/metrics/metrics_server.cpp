#include "prodsafe/metrics/metrics_server.hpp"

#include "http_exchange.hpp"
#include "http_server.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/build_info.hpp"
#include "prodsafe/metrics/text_serializer.hpp"

namespace prodsafe::metrics {
namespace {

using std::chrono::milliseconds;

constexpr std::size_t kMaxConnections = 10'000;
constexpr milliseconds kMaxTimeout = std::chrono::minutes(10);
constexpr std::size_t kMinHeaderBytes = 256;
constexpr std::size_t kMaxHeaderBytes = 1024 * 1024;
void check_timeout(std::string_view field, milliseconds value) {
  if (value.count() < 1 || value > kMaxTimeout) {
    throw InvalidArgument(
        fmt::format("MetricsServerOptions::{} must be between 1 ms and 10 min, got {} ms", field,
                    value.count()));
  }
}

}  // namespace

void validate_options(const MetricsServerOptions& options) {
  if (options.host.empty()) {
    throw InvalidArgument("MetricsServerOptions::host is empty; use 127.0.0.1 for loopback only");
  }
  if (options.port < 0 || options.port > 65535) {
    throw InvalidArgument(fmt::format(
        "MetricsServerOptions::port must be between 0 (any free port) and 65535, got {}",
        options.port));
  }
  if (options.max_connections < 1 || options.max_connections > kMaxConnections) {
    throw InvalidArgument(
        fmt::format("MetricsServerOptions::max_connections must be between 1 and {}, got {}",
                    kMaxConnections, options.max_connections));
  }
  check_timeout("request_timeout", options.request_timeout);
  check_timeout("response_timeout", options.response_timeout);
  if (options.max_header_bytes < kMinHeaderBytes || options.max_header_bytes > kMaxHeaderBytes) {
    throw InvalidArgument(
        fmt::format("MetricsServerOptions::max_header_bytes must be between {} and {}, got {}",
                    kMinHeaderBytes, kMaxHeaderBytes, options.max_header_bytes));
  }
}

struct MetricsServer::Impl {
  std::string host;
  std::unique_ptr<detail::HttpServer> server;
};

MetricsServer::MetricsServer(Registry& registry, MetricsServerOptions options) {
  validate_options(options);
  register_build_info(registry);
  auto& dropped = registry.counter(
      "prodsafe_metrics_server_dropped_connections_total",
      "Connections the metrics server closed before it had answered them, by reason.", {"reason"});
  // Created now, so every reason is exported (at 0) from the first scrape.
  Counter* evicted = &dropped.labels({"evicted"});
  Counter* request_timed_out = &dropped.labels({"request_timeout"});
  Counter* response_timed_out = &dropped.labels({"response_timeout"});
  Counter* header_too_large = &dropped.labels({"header_too_large"});
  impl_ = std::make_unique<Impl>();
  impl_->host = options.host;
  impl_->server = std::make_unique<detail::HttpServer>(
      detail::HttpServerOptions{.host = options.host,
                                .port = options.port,
                                .max_connections = options.max_connections,
                                .request_timeout = options.request_timeout,
                                .response_timeout = options.response_timeout,
                                .max_header_bytes = options.max_header_bytes,
                                .max_body_bytes = 0},
      [&registry](const detail::HttpRequest& request) {
        return detail::respond(request,
                               [&registry] { return to_prometheus_text(registry.collect()); });
      },
      [=](std::string_view reason) {
        if (reason == "evicted") {
          evicted->inc();
        } else if (reason == "request_timeout") {
          request_timed_out->inc();
        } else if (reason == "response_timeout") {
          response_timed_out->inc();
        } else {
          header_too_large->inc();  // header_too_large, or a body (never accepted here)
        }
      });
}

MetricsServer::~MetricsServer() = default;

int MetricsServer::port() const noexcept { return impl_->server->port(); }

std::string MetricsServer::url() const {
  return detail::http_base_url(impl_->host, impl_->server->port()) + "/metrics";
}

}  // namespace prodsafe::metrics
