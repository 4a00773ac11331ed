// What the StatsD tests share: a UDP receiver on loopback and a fixture with
// one, plus the client options that send to it.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/metrics/statsd.hpp"

namespace prodsafe::metrics::statsd_testing {

inline constexpr auto kDeadline =
    std::chrono::seconds(5);  // how long a datagram that must arrive may take
inline constexpr auto kQuiet =
    std::chrono::milliseconds(200);  // how long to listen to show nothing arrives
inline constexpr auto kNever = std::chrono::hours(1);

// The '\n'-separated lines of a datagram.
inline std::vector<std::string> split(const std::string& datagram) {
  std::vector<std::string> lines;
  std::size_t begin = 0;
  for (std::size_t end = 0; end != std::string::npos; begin = end + 1) {
    end = datagram.find('\n', begin);
    lines.push_back(datagram.substr(begin, end - begin));
  }
  return lines;
}

// A UDP socket bound to an ephemeral port on loopback.
class UdpReceiver {
 public:
  explicit UdpReceiver(bool ipv6 = false) {
    fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int size = 4 << 20;  // room for bursts while the test thread is busy
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    sockaddr_storage address{};
    socklen_t length = 0;
    if (ipv6) {
      auto& in6 = reinterpret_cast<sockaddr_in6&>(address);
      in6.sin6_family = AF_INET6;
      in6.sin6_addr = in6addr_loopback;
      length = sizeof in6;
    } else {
      auto& in4 = reinterpret_cast<sockaddr_in&>(address);
      in4.sin_family = AF_INET;
      in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      length = sizeof in4;
    }
    bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) == 0 &&
             ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    if (bound_) {
      port_ = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6&>(address).sin6_port
                         : reinterpret_cast<sockaddr_in&>(address).sin_port);
    }
  }
  ~UdpReceiver() { close(); }
  UdpReceiver(const UdpReceiver&) = delete;
  UdpReceiver& operator=(const UdpReceiver&) = delete;

  [[nodiscard]] bool bound() const { return bound_; }
  [[nodiscard]] int port() const { return port_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // The next datagram, or nothing when none arrives within `timeout`.
  std::optional<std::string> receive(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd ready{fd_, POLLIN, 0};
      const int polled = ::poll(&ready, 1, static_cast<int>(std::max(left.count(), 0L)));
      if (polled > 0) {
        std::array<char, 65536> buffer{};
        const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
        if (n >= 0) return std::string(buffer.data(), static_cast<std::size_t>(n));
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    }
  }

  // Datagrams until they hold `lines` lines in all, or the deadline passes.
  std::vector<std::string> datagrams(std::size_t lines,
                                     std::chrono::milliseconds timeout = kDeadline) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<std::string> received;
    std::size_t seen = 0;
    while (seen < lines) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      auto datagram = receive(std::max(left, std::chrono::milliseconds(0)));
      if (!datagram) break;
      seen += static_cast<std::size_t>(std::count(datagram->begin(), datagram->end(), '\n')) + 1;
      received.push_back(std::move(*datagram));
    }
    return received;
  }

  // The lines of datagrams(lines, timeout).
  std::vector<std::string> lines(std::size_t lines, std::chrono::milliseconds timeout = kDeadline) {
    std::vector<std::string> out;
    for (const std::string& datagram : datagrams(lines, timeout)) {
      for (std::string& line : split(datagram)) out.push_back(std::move(line));
    }
    return out;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  bool bound_ = false;
};

// Options that send at once to `receiver`, with a guard of the test's own.
inline StatsdOptions immediate(const UdpReceiver& receiver, MetricsCardinalityGuard& guard) {
  StatsdOptions options;
  options.port = receiver.port();
  options.flush_interval = std::chrono::milliseconds(0);
  options.guard = &guard;
  return options;
}

template <class Exception, class Call>
std::string message_of(Call&& call) {
  try {
    call();
  } catch (const Exception& error) {
    return error.what();
  }
  ADD_FAILURE() << "nothing thrown";
  return {};
}

class StatsdTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(receiver_.bound()); }

  UdpReceiver receiver_;
  MetricsCardinalityGuard guard_;
};

class StatsdExporterTest : public StatsdTest {
 protected:
  StatsdOptions buffered() {
    StatsdOptions options = immediate(receiver_, guard_);
    options.flush_interval = kNever;  // the exporter flushes after each push
    return options;
  }

  MetricsCardinalityGuard registry_guard_;
  Registry registry_{&registry_guard_};
};

}  // namespace prodsafe::metrics::statsd_testing
