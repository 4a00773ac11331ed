#include "prodsafe/metrics/metrics_server.hpp"

#include <thread>

#include <fmt/format.h>
#include <httplib.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::metrics {

struct MetricsServer::Impl {
  httplib::Server server;
  std::thread thread;
  std::string host;
  int port = 0;
};

MetricsServer::MetricsServer(const Registry& registry, MetricsServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = options.host;
  impl_->server.Get("/metrics", [&registry](const httplib::Request&, httplib::Response& response) {
    response.set_content(registry.serialize(), "text/plain; version=0.0.4; charset=utf-8");
  });
  impl_->port = options.port == 0
                    ? impl_->server.bind_to_any_port(options.host)
                    : (impl_->server.bind_to_port(options.host, options.port) ? options.port : -1);
  if (impl_->port <= 0) {
    throw StoreUnavailable(fmt::format(
        "cannot serve metrics on {}:{}: the address is in use or not local; pick another port",
        options.host, options.port));
  }
  impl_->thread = std::thread([impl = impl_.get()] { impl->server.listen_after_bind(); });
  // stop() before the accept loop runs would be missed: wait until it runs.
  while (!impl_->server.is_running()) std::this_thread::yield();
}

MetricsServer::~MetricsServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int MetricsServer::port() const noexcept { return impl_->port; }

std::string MetricsServer::url() const {
  return fmt::format("http://{}:{}/metrics", impl_->host, impl_->port);
}

}  // namespace prodsafe::metrics
