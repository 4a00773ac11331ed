// Non-blocking sockets with deadlines: what the transports are made of.
#pragma once

#include <string>

#include "transport.hpp"

namespace prodsafe::redis::detail {

// A file descriptor that closes on destruction.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) noexcept : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(other.release()) {}
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  [[nodiscard]] int get() const noexcept { return fd_; }
  int release() noexcept;

 private:
  int fd_ = -1;
};

// Waits until `fd` has any of `events` (POLLIN, POLLOUT); false at the
// deadline. EINTR waits again for what is left. Throws TransportError
// (kFailed) when poll() fails.
[[nodiscard]] bool wait_for(int fd, short events, Deadline deadline);

// A connected, non-blocking TCP socket to `host`:`port` (each address the
// name resolves to, in turn), with TCP_NODELAY and keepalive. Throws
// TransportError: kTimeout at the deadline, kFailed when no address accepts
// (the message names the last error), kUnknownHost when the name does not
// resolve.
[[nodiscard]] Socket connect_tcp(const std::string& host, int port, Deadline deadline);

// A connected, non-blocking unix stream socket. Throws TransportError.
[[nodiscard]] Socket connect_unix(const std::string& path, Deadline deadline);

// send() with MSG_NOSIGNAL: the bytes written, 0 when the socket would
// block. Throws TransportError (kClosed on EPIPE/ECONNRESET, else kFailed).
[[nodiscard]] std::size_t send_some(int fd, const char* data, std::size_t size);
// recv(): the bytes read, 0 when the socket would block. Throws
// TransportError (kClosed at the end of the stream or on ECONNRESET).
[[nodiscard]] std::size_t receive_some(int fd, char* data, std::size_t size);

}  // namespace prodsafe::redis::detail
