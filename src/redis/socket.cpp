#include "socket.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>

#include <fmt/format.h>

namespace prodsafe::redis::detail {
namespace {

using Kind = TransportError::Kind;

std::string error_text(int error) { return std::strerror(error); }

// poll()'s timeout for what is left until `deadline`, rounded up so that a
// wait never ends just before it; -1 for none.
int remaining_ms(Deadline deadline) {
  if (deadline == kNoDeadline) return -1;
  const auto left = deadline - std::chrono::steady_clock::now();
  if (left <= std::chrono::steady_clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<long long>(ms, 24LL * 3600 * 1000));
}

// Finishes a non-blocking connect() that returned EINPROGRESS.
void finish_connect(int fd, Deadline deadline, const std::string& where) {
  if (!wait_for(fd, POLLOUT, deadline)) {
    throw TransportError(Kind::kTimeout, fmt::format("connecting to {}", where));
  }
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error != 0) {
    throw TransportError(Kind::kFailed, fmt::format("connect to {}: {}", where, error_text(error)));
  }
}

Socket open_and_connect(int family, const sockaddr* address, socklen_t length, Deadline deadline,
                        const std::string& where) {
  Socket socket(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (socket.get() < 0) {
    throw TransportError(Kind::kFailed,
                         fmt::format("socket() for {}: {}", where, error_text(errno)));
  }
  for (;;) {
    if (::connect(socket.get(), address, length) == 0) return socket;
    if (errno == EINTR) continue;
    if (errno == EINPROGRESS) {
      finish_connect(socket.get(), deadline, where);
      return socket;
    }
    if (errno == EAGAIN && family == AF_UNIX) {
      // The listener's backlog is full; the connect never started. Nothing
      // to poll for: try again shortly, until the deadline.
      if (remaining_ms(deadline) == 0) {
        throw TransportError(Kind::kTimeout, fmt::format("connecting to {}", where));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(
          remaining_ms(deadline) < 0 ? 5 : std::min(5, remaining_ms(deadline))));
      continue;
    }
    throw TransportError(Kind::kFailed, fmt::format("connect to {}: {}", where, error_text(errno)));
  }
}

}  // namespace

Deadline deadline_after(std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) return kNoDeadline;
  return std::chrono::steady_clock::now() + timeout;
}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}

int Socket::release() noexcept { return std::exchange(fd_, -1); }

bool wait_for(int fd, short events, Deadline deadline) {
  for (;;) {
    pollfd entry{.fd = fd, .events = events, .revents = 0};
    const int timeout = remaining_ms(deadline);
    const int ready = ::poll(&entry, 1, timeout);
    if (ready > 0) return true;  // ready, or an error/hang-up the next call reports
    if (ready == 0) {
      if (timeout == 0 || remaining_ms(deadline) == 0) return false;
      continue;  // woke early (the clock's rounding): wait for the rest
    }
    if (errno != EINTR) {
      throw TransportError(Kind::kFailed, fmt::format("poll(): {}", error_text(errno)));
    }
  }
}

Socket connect_tcp(const std::string& host, int port, Deadline deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const int status = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (status != 0) {
    const bool unknown = status == EAI_NONAME || status == EAI_NODATA;
    throw TransportError(unknown ? Kind::kUnknownHost : Kind::kFailed,
                         fmt::format("cannot resolve '{}': {}", host, ::gai_strerror(status)));
  }
  const std::unique_ptr<addrinfo, void (*)(addrinfo*)> addresses(found, ::freeaddrinfo);
  std::string last_error = "no address";
  const std::string where = fmt::format("{}:{}", host, port);
  for (const addrinfo* each = addresses.get(); each != nullptr; each = each->ai_next) {
    try {
      Socket socket =
          open_and_connect(each->ai_family, each->ai_addr, each->ai_addrlen, deadline, where);
      const int on = 1;
      // Both are hints: a socket without them still works.
      (void)::setsockopt(socket.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
      (void)::setsockopt(socket.get(), SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
      return socket;
    } catch (const TransportError& error) {
      if (error.kind() == Kind::kTimeout) throw;
      last_error = error.what();
    }
  }
  throw TransportError(Kind::kFailed, last_error);
}

Socket connect_unix(const std::string& path, Deadline deadline) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) {
    throw TransportError(Kind::kFailed, fmt::format("unix socket path too long: {}", path));
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return open_and_connect(AF_UNIX, reinterpret_cast<const sockaddr*>(&address), sizeof address,
                          deadline, path);
}

std::size_t send_some(int fd, const char* data, std::size_t size) {
  for (;;) {
    const ssize_t sent = ::send(fd, data, size, MSG_NOSIGNAL);
    if (sent >= 0) return static_cast<std::size_t>(sent);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    const bool closed = errno == EPIPE || errno == ECONNRESET;
    throw TransportError(closed ? Kind::kClosed : Kind::kFailed,
                         fmt::format("write: {}", error_text(errno)));
  }
}

std::size_t receive_some(int fd, char* data, std::size_t size) {
  for (;;) {
    const ssize_t got = ::recv(fd, data, size, 0);
    if (got > 0) return static_cast<std::size_t>(got);
    if (got == 0) throw TransportError(Kind::kClosed, "the server closed the connection");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    const bool closed = errno == ECONNRESET;
    throw TransportError(closed ? Kind::kClosed : Kind::kFailed,
                         fmt::format("read: {}", error_text(errno)));
  }
}

}  // namespace prodsafe::redis::detail
