#include "server_socket.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::metrics::detail {

int bound_port(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return -1;
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
}

// A non-blocking listening socket on host:port: throws ConfigError when the
// host does not resolve, IoError when no address can be bound.
Descriptor listen_on(const std::string& host, int port) {
  const auto cannot_serve = [&](std::string_view why) {
    return fmt::format("cannot serve metrics on {}:{}: {}", host, port, why);
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    throw ConfigError(
        cannot_serve(fmt::format("{}; check the host name, or give an IP address",
                                 rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc))));
  }
  int error = 0;
  Descriptor listener;
  for (const addrinfo* at = found; at != nullptr; at = at->ai_next) {
    Descriptor fd(
        ::socket(at->ai_family, at->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, at->ai_protocol));
    if (fd.get() < 0) {
      error = errno;
      continue;
    }
    const int on = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (::bind(fd.get(), at->ai_addr, at->ai_addrlen) == 0 && ::listen(fd.get(), SOMAXCONN) == 0) {
      listener = std::move(fd);
      break;
    }
    error = errno;
  }
  ::freeaddrinfo(found);
  if (listener.get() < 0) {
    throw IoError(cannot_serve(
        fmt::format("{}; pick another port or a local address", std::strerror(error))));
  }
  return listener;
}

}  // namespace prodsafe::metrics::detail
