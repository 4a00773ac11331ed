// The byte stream under a Connection: a socket prodsafe owns (plain TCP or
// unix, or TLS over TCP). Every call runs against an absolute deadline,
// whatever signals interrupt it, and nothing it does raises SIGPIPE.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace prodsafe::redis::detail {

using Deadline = std::chrono::steady_clock::time_point;
inline constexpr Deadline kNoDeadline = Deadline::max();

// now + timeout, or kNoDeadline for 0 ("wait forever").
[[nodiscard]] Deadline deadline_after(std::chrono::milliseconds timeout);

// What a transport reports; Connection turns it into prodsafe's error
// classes with the endpoint and the command in the message.
class TransportError : public std::runtime_error {
 public:
  enum class Kind {
    kTimeout,      // the deadline passed
    kClosed,       // the peer closed the connection
    kFailed,       // a socket or TLS error
    kRejected,     // TLS: the peer or its certificate is not the one configured
    kUnknownHost,  // the host name does not resolve (not a transient DNS failure)
  };
  TransportError(Kind kind, const std::string& detail) : std::runtime_error(detail), kind_(kind) {}
  [[nodiscard]] Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

// Destroying a transport closes its socket and writes nothing (no TLS
// close_notify): a child of fork() may destroy the parent's connections
// without disturbing them.
class Transport {
 public:
  virtual ~Transport() = default;
  // Writes all of `data`. Throws TransportError.
  virtual void write_all(std::string_view data, Deadline deadline) = 0;
  // Reads at least one byte into `buffer` and returns how many. Throws
  // TransportError (kClosed at the end of the stream).
  virtual std::size_t read_some(std::span<char> buffer, Deadline deadline) = 0;
  // True when read_some() would return without waiting on the socket (TLS:
  // decrypted bytes already buffered).
  [[nodiscard]] virtual bool has_buffered() const noexcept = 0;
  // Waits until read_some() has something to return; false at the deadline.
  [[nodiscard]] virtual bool wait_readable(Deadline deadline) = 0;
  // The socket, for a poll() that checks whether the peer closed it.
  [[nodiscard]] virtual int fd() const noexcept = 0;
};

}  // namespace prodsafe::redis::detail
