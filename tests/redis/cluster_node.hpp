// Test-only: a private redis-server with cluster-enabled yes, for the tests
// that compare prodsafe's cluster building blocks (slot.hpp,
// src/redis/command_keys.hpp, src/redis/cluster_topology.hpp) with a real
// node. The cluster bus listens on a free port of its own (cluster-port):
// the default, port + 10000, overflows for ephemeral ports above 55535.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/redis/options.hpp"

namespace prodsafe::testing {

struct ClusterNodeProcess {
  std::unique_ptr<embedded::RedisServer> server;
  int bus_port = 0;
};

inline int free_loopback_port_for_test() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw IoError(fmt::format("socket(): {}", std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) throw IoError(fmt::format("cannot find a free loopback port: {}", std::strerror(saved)));
  return ntohs(address.sin_port);
}

// Starts a cluster-enabled node that owns no slot and knows no other node.
// Another process may take the probed bus port before redis-server binds it:
// then it tries a fresh one, a few times.
inline ClusterNodeProcess start_cluster_node() {
  constexpr int kAttempts = 4;
  for (int attempt = 1;; ++attempt) {
    const int bus_port = free_loopback_port_for_test();
    embedded::RedisServerOptions options{.config = {"cluster-enabled yes",
                                                    fmt::format("cluster-port {}", bus_port),
                                                    "cluster-node-timeout 5000"}};
    try {
      return {std::make_unique<embedded::RedisServer>(std::move(options)), bus_port};
    } catch (const StoreUnavailable& error) {
      const bool taken =
          std::string(error.what()).find("Address already in use") != std::string::npos;
      if (!taken || attempt == kAttempts) throw;
    }
  }
}

inline redis::Options cluster_test_options() {
  using std::chrono::milliseconds;
  return {.connect_timeout = milliseconds(1000),
          .command_timeout = milliseconds(2000),
          .pool_size = 2,
          .pool_checkout_timeout = milliseconds(1000)};
}

}  // namespace prodsafe::testing
