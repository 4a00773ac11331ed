// The FaultProxy's socket plumbing (chaos/framework/fault_proxy.hpp): the
// POSIX calls its poll() loop makes, with their error handling, so that
// fault_proxy.cpp holds only the forwarding and the faults. Internal to the
// chaos framework.
//
// Thread safety: free functions over file descriptors the caller owns.
#pragma once

#include <sys/socket.h>

#include <string>

namespace prodsafe::chaos::proxy {

// Closes with RST instead of FIN, as a crashed peer or a reset link would;
// sets fd to -1. No-op for -1.
void abort_socket(int& fd);
// Closes (FIN) and sets fd to -1. No-op for -1.
void close_socket(int& fd);
// TCP_NODELAY: the proxy forwards each chunk as it comes.
void set_no_delay(int fd);

struct SocketAddress {
  sockaddr_storage address{};
  socklen_t size = 0;
};

// `host` (a name or an IPv4/IPv6 address) and `port`, resolved. Throws
// InvalidArgument naming the host when it does not resolve.
[[nodiscard]] SocketAddress resolve(const std::string& host, int port);

// A non-blocking listening socket on 127.0.0.1:`port` (0: a free port);
// `bound_port` gets the port it listens on. Throws IoError naming the
// address and the reason.
[[nodiscard]] int listen_on_loopback(int port, int& bound_port);

// A non-blocking TCP socket connecting to `to` (TCP_NODELAY set). Returns
// the socket and sets `connected` when the connection is already up, or
// when it is in progress (then poll for POLLOUT and call connect_error());
// returns -1 with errno set when it failed at once.
[[nodiscard]] int start_connect(const SocketAddress& to, bool& connected);
// The outcome of a non-blocking connect: 0 when it succeeded, else the
// errno it failed with.
[[nodiscard]] int connect_error(int fd);

// A non-blocking eventfd, to wake a poll() from another thread. Throws
// IoError.
[[nodiscard]] int make_wake_fd();
// Adds one to the eventfd (wakes the poll()); drains it (after a wake-up).
void wake(int wake_fd);
void drain(int wake_fd);

}  // namespace prodsafe::chaos::proxy
