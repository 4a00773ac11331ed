// The sockets under MetricsServer: a descriptor that closes itself, and the
// listening socket.
#pragma once

#include <unistd.h>

#include <string>
#include <utility>

namespace prodsafe::metrics::detail {

// Closes a descriptor on scope exit unless released.
class Descriptor {
 public:
  explicit Descriptor(int fd = -1) noexcept : fd_(fd) {}
  ~Descriptor() { reset(); }
  Descriptor(Descriptor&& other) noexcept : fd_(other.release()) {}
  Descriptor& operator=(Descriptor&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.release();
    }
    return *this;
  }
  [[nodiscard]] int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// A non-blocking, close-on-exec listening socket on host:port (a numeric
// address or a name, resolved now). Throws ConfigError when the host does not
// resolve and IoError when none of its addresses can be bound (in use, not
// local, not permitted), both naming host and port.
[[nodiscard]] Descriptor listen_on(const std::string& host, int port);

// The port a socket is bound to, or -1.
[[nodiscard]] int bound_port(int fd);

}  // namespace prodsafe::metrics::detail
