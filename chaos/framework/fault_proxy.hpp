// A TCP proxy that injects network faults between clients and one upstream
// server (the kernel the chaos suite runs on has no netem). It listens on
// 127.0.0.1 and forwards every accepted connection to the upstream over a
// connection of its own, on one poll() thread.
//
//   prodsafe::chaos::FaultProxy proxy({.upstream_port = server.port()});
//   prodsafe::redis::Client redis(proxy.redis_url());
//   proxy.set_latency(std::chrono::milliseconds(50));
//   proxy.set_blackhole(true);   // commands now time out
//
// Fault model:
// - latency: every chunk read from either side is held this long before it is
//   forwarded; chunks leave in the order they arrived, so lowering the latency
//   never lets a later chunk overtake an earlier one.
// - blackhole: a dead link. Connections stay open and new ones are accepted,
//   but nothing is forwarded in either direction: bytes that arrive are read
//   and discarded (counted in bytes_dropped), and so is everything still held
//   by latency when the blackhole starts. Turning it off does not bring the
//   lost bytes back; a connection that lived through it may carry a torn
//   request or reply, which is why clients that timed out reconnect. Closes
//   (FIN) still pass, so connections are not leaked.
// - refuse: a host that is down. New connections are accepted and at once
//   reset (RST); connections already open keep working.
// - reset_all: every open connection is reset (SO_LINGER {1, 0}, then close)
//   on both sides.
// Every setter has taken effect when it returns. When the upstream cannot be
// reached, the client's connection is reset and counted in upstream_failures.
//
// Thread safety: safe for concurrent use from any number of threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace prodsafe::chaos {

struct FaultProxyOptions {
  // The server connections are forwarded to: a host name or an IPv4/IPv6
  // address, resolved once at construction. Default: 127.0.0.1.
  std::string upstream_host = "127.0.0.1";
  // Required, 1-65535. Default: 0 (invalid: the constructor throws).
  int upstream_port = 0;
  // Port to listen on, on 127.0.0.1. Default: 0, a free port (see port()).
  int listen_port = 0;
  // Time allowed to connect to the upstream; then the client's connection is
  // reset and counted in upstream_failures. Default: 1 s. 0 means wait as long
  // as the operating system does.
  std::chrono::milliseconds upstream_connect_timeout{1000};
  // Most bytes held per connection and direction (latency queues); beyond it
  // the proxy stops reading that side until the queue drains. Default: 1 MiB.
  // Must be at least 1.
  std::size_t max_buffered_bytes = std::size_t{1} << 20;
};

// Counters since construction.
struct FaultProxyStats {
  // Client connections accepted, including the ones refuse mode reset.
  std::uint64_t connections_accepted = 0;
  // Client connections open now.
  std::uint64_t connections_open = 0;
  // Connections reset at once because refuse mode was on.
  std::uint64_t connections_refused = 0;
  // Connections reset by reset_all() or stop().
  std::uint64_t resets = 0;
  // Client connections reset because the upstream could not be reached.
  std::uint64_t upstream_failures = 0;
  // Bytes forwarded client -> upstream and upstream -> client.
  std::uint64_t bytes_to_upstream = 0;
  std::uint64_t bytes_to_client = 0;
  // Bytes discarded by the blackhole, both directions.
  std::uint64_t bytes_dropped = 0;
};

class FaultProxy {
 public:
  // Binds and starts forwarding. Throws InvalidArgument when the upstream is
  // not a valid host and port, IoError when it cannot listen (the
  // message names the address and the reason).
  explicit FaultProxy(FaultProxyOptions options);
  // Stops (see stop()).
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // The port the proxy listens on (127.0.0.1).
  [[nodiscard]] int port() const noexcept { return port_; }
  // redis://127.0.0.1:<port>
  [[nodiscard]] std::string redis_url() const;

  // Delay each chunk by `latency` in each direction; zero (the start value)
  // forwards at once. Applies to chunks read from now on. Negative values
  // throw InvalidArgument.
  void set_latency(std::chrono::milliseconds latency);
  void set_blackhole(bool on);
  void set_refuse(bool on);
  // Resets every open connection (both sides); returns how many there were.
  // New connections are accepted as usual afterwards.
  std::size_t reset_all();

  [[nodiscard]] FaultProxyStats stats() const;

  // Stops listening, resets every open connection and joins the proxy's
  // thread. Idempotent; later setters only record the fault state.
  void stop();

 private:
  struct Loop;  // the poll() thread and everything it owns

  int port_ = 0;
  std::unique_ptr<Loop> loop_;
};

}  // namespace prodsafe::chaos
