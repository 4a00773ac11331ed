// Test-only: a "Redis" on 127.0.0.1 that answers every read of a request with
// the same raw RESP bytes (a sentinel that names a chosen address, or says
// something no sentinel would), or with what a function makes of the request
// (a cluster node that redirects forever), and counts the requests it
// answered. One read is taken as one request: clients here send one command
// at a time.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/loopback_listener.hpp"

namespace prodsafe::testing {

class CannedRedisServer {
 public:
  // The raw RESP bytes to answer a request with.
  using Responder = std::function<std::string(std::string_view request)>;

  explicit CannedRedisServer(std::string reply)
      : CannedRedisServer([reply = std::move(reply)](std::string_view) { return reply; }) {}
  explicit CannedRedisServer(Responder responder) : responder_(std::move(responder)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~CannedRedisServer() {
    stop_ = true;
    thread_.join();
  }
  CannedRedisServer(const CannedRedisServer&) = delete;
  CannedRedisServer& operator=(const CannedRedisServer&) = delete;

  [[nodiscard]] int port() const noexcept { return listener_.port(); }
  [[nodiscard]] int requests() const noexcept { return requests_.load(); }

 private:
  void serve() {
    std::vector<pollfd> fds{{.fd = listener_.fd(), .events = POLLIN, .revents = 0}};
    while (!stop_) {
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      for (std::size_t i = fds.size(); i-- > 1;) {
        if (fds[i].revents == 0) continue;
        char buffer[4096];
        const ssize_t got = ::recv(fds[i].fd, buffer, sizeof(buffer), 0);
        if (got <= 0) {
          ::close(fds[i].fd);
          fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i));
          continue;
        }
        ++requests_;
        const std::string reply =
            responder_(std::string_view(buffer, static_cast<std::size_t>(got)));
        (void)::send(fds[i].fd, reply.data(), reply.size(), MSG_NOSIGNAL);
      }
      if ((fds[0].revents & POLLIN) != 0) {
        const int client = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
        if (client >= 0) fds.push_back({.fd = client, .events = POLLIN, .revents = 0});
      }
      for (pollfd& entry : fds) entry.revents = 0;
    }
    for (std::size_t i = 1; i < fds.size(); ++i) ::close(fds[i].fd);
  }

  LoopbackListener listener_;
  const Responder responder_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

}  // namespace prodsafe::testing
