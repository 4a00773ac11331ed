#include "chaos/framework/fault_proxy.hpp"

#include <fmt/format.h>

#include "chaos/framework/proxy_loop.hpp"
#include "prodsafe/core/error.hpp"

namespace prodsafe::chaos {

FaultProxy::FaultProxy(FaultProxyOptions options)
    : loop_(std::make_unique<Loop>(std::move(options))) {
  port_ = loop_->options.listen_port;
  loop_->thread = std::thread([loop = loop_.get()] { loop->run(); });
}

FaultProxy::~FaultProxy() { stop(); }

std::string FaultProxy::redis_url() const { return fmt::format("redis://127.0.0.1:{}", port_); }

void FaultProxy::set_latency(std::chrono::milliseconds latency) {
  if (latency.count() < 0) {
    throw InvalidArgument(fmt::format(
        "FaultProxy::set_latency: latency must not be negative ({} ms)", latency.count()));
  }
  loop_->execute([latency](Loop& loop) { loop.latency = latency; });
}

void FaultProxy::set_blackhole(bool on) {
  loop_->execute([on](Loop& loop) { loop.set_blackhole(on); });
}

void FaultProxy::set_refuse(bool on) {
  loop_->execute([on](Loop& loop) { loop.refuse = on; });
}

std::size_t FaultProxy::reset_all() {
  std::size_t count = 0;
  loop_->execute([&count](Loop& loop) { count = loop.reset_all(); });
  return count;
}

FaultProxyStats FaultProxy::stats() const {
  const auto& c = loop_->counters;
  return {.connections_accepted = c.accepted.load(),
          .connections_open = c.open.load(),
          .connections_refused = c.refused.load(),
          .resets = c.resets.load(),
          .upstream_failures = c.upstream_failures.load(),
          .bytes_to_upstream = c.to_upstream.load(),
          .bytes_to_client = c.to_client.load(),
          .bytes_dropped = c.dropped.load()};
}

void FaultProxy::stop() {
  std::lock_guard stop_lock(loop_->stop_mutex);
  if (!loop_->thread.joinable()) return;
  loop_->execute([](Loop& loop) { loop.stopping = true; });
  loop_->thread.join();
}

}  // namespace prodsafe::chaos
