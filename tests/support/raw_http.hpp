// Test-only helpers for the HTTP servers' tests (MetricsServer, the
// dashboard): raw HTTP over a blocking loopback socket (for requests no HTTP
// client library would send), and a poll with a deadline.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

namespace prodsafe::testing {

using SteadyClock = std::chrono::steady_clock;

// A blocking TCP connection to 127.0.0.1:port, or -1.
inline int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval limit{.tv_sec = 2, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// False when the peer is gone.
inline bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

// Everything the peer sends until it closes, or until `deadline`.
inline std::string read_until_closed(int fd, SteadyClock::time_point deadline) {
  std::string received;
  char buffer[16 * 1024];
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) return received;
    pollfd polled{fd, POLLIN, 0};
    if (::poll(&polled, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
    if (got <= 0) return received;
    received.append(buffer, static_cast<std::size_t>(got));
  }
}

struct RawReply {
  bool closed_in_time = false;
  int status = 0;
  std::string raw{};
  std::string head{};  // up to and without the blank line
  std::string body{};
  // The value of header `name` (as sent, case-sensitive match), or "".
  [[nodiscard]] std::string header(std::string_view name) const {
    const std::string prefix = "\r\n" + std::string(name) + ": ";
    const auto at = head.find(prefix);
    if (at == std::string::npos) return "";
    const auto start = at + prefix.size();
    return head.substr(start, head.find("\r\n", start) - start);
  }
};

inline RawReply parse_raw_reply(std::string raw, bool closed_in_time) {
  RawReply reply;
  reply.closed_in_time = closed_in_time;
  reply.raw = std::move(raw);
  if (reply.raw.starts_with("HTTP/1.1 ")) reply.status = std::atoi(reply.raw.c_str() + 9);
  const auto blank = reply.raw.find("\r\n\r\n");
  if (blank != std::string::npos) {
    reply.head = reply.raw.substr(0, blank);
    reply.body = reply.raw.substr(blank + 4);
  }
  return reply;
}

// Sends `request` on a new connection and reads the whole response, waiting
// at most `limit` for the server to finish and close.
inline RawReply raw_exchange(int port, std::string_view request,
                             std::chrono::milliseconds limit = std::chrono::milliseconds(6000)) {
  const auto deadline = SteadyClock::now() + limit;
  const int fd = connect_to(port);
  if (fd < 0) return {};
  send_all(fd, request);
  std::string raw = read_until_closed(fd, deadline);
  const bool in_time = SteadyClock::now() < deadline;
  ::close(fd);
  return parse_raw_reply(std::move(raw), in_time);
}

// Polls `done` every 10 ms until it is true or `limit` has passed; returns
// its last answer.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto deadline = SteadyClock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace prodsafe::testing
