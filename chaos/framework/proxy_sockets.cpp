#include "chaos/framework/proxy_sockets.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::chaos::proxy {

void abort_socket(int& fd) {
  if (fd < 0) return;
  const linger hard{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  ::close(fd);
  fd = -1;
}

void close_socket(int& fd) {
  if (fd < 0) return;
  ::close(fd);
  fd = -1;
}

void set_no_delay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

SocketAddress resolve(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
      rc != 0 || found == nullptr) {
    throw InvalidArgument(fmt::format("FaultProxy: cannot resolve the upstream host '{}': {}", host,
                                      ::gai_strerror(rc)));
  }
  SocketAddress resolved;
  std::memcpy(&resolved.address, found->ai_addr, found->ai_addrlen);
  resolved.size = found->ai_addrlen;
  ::freeaddrinfo(found);
  return resolved;
}

int listen_on_loopback(int port, int& bound_port) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (listener < 0 || ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener, SOMAXCONN) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    const int saved = errno;
    close_socket(listener);
    throw IoError(fmt::format(
        "FaultProxy cannot listen on 127.0.0.1:{}: {}; pass listen_port 0 for a free port", port,
        std::strerror(saved)));
  }
  bound_port = ntohs(address.sin_port);
  return listener;
}

int start_connect(const SocketAddress& to, bool& connected) {
  connected = false;
  int fd = ::socket(to.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  set_no_delay(fd);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&to.address), to.size) == 0) {
    connected = true;
    return fd;
  }
  if (errno == EINPROGRESS) return fd;
  const int saved = errno;
  close_socket(fd);
  errno = saved;
  return -1;
}

int connect_error(int fd) {
  int error = 0;
  socklen_t size = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
  return error;
}

int make_wake_fd() {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw IoError(fmt::format("FaultProxy: eventfd failed: {}", std::strerror(errno)));
  return fd;
}

void wake(int wake_fd) {
  const std::uint64_t one = 1;
  (void)!::write(wake_fd, &one, sizeof one);
}

void drain(int wake_fd) {
  std::uint64_t ignored = 0;
  (void)!::read(wake_fd, &ignored, sizeof ignored);
}

}  // namespace prodsafe::chaos::proxy
