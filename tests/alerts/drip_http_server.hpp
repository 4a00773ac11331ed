// Test-only: a raw TCP "HTTP server" on 127.0.0.1 (ephemeral port) that reads
// each request and answers 200 one byte at a time, a byte every `interval`:
// its headers too (kHeaders), or headers at once and then the body (kBody).
// Every read of a client finds a byte waiting, so only a deadline on the whole
// attempt ends it.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <thread>

namespace prodsafe::alerts::testing {

class DripHttpServer {
 public:
  enum class Drip { kHeaders, kBody };

  DripHttpServer(Drip drip, std::chrono::milliseconds interval) : drip_(drip), interval_(interval) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(listener_, 8) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("drip server: cannot listen on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~DripHttpServer() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }

  DripHttpServer(const DripHttpServer&) = delete;
  DripHttpServer& operator=(const DripHttpServer&) = delete;

  [[nodiscard]] std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  [[nodiscard]] int connections() const { return connections_.load(); }

 private:
  bool readable(int fd) const {
    pollfd entry{.fd = fd, .events = POLLIN, .revents = 0};
    return ::poll(&entry, 1, 20) > 0;
  }

  void serve() {
    while (!stop_) {
      if (!readable(listener_)) continue;
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      connections_.fetch_add(1);
      answer(client);
      ::close(client);
    }
  }

  // Reads the request head and its Content-Length body, then drips.
  void answer(int client) {
    std::string request;
    char buffer[4096];
    for (;;) {
      const auto end = request.find("\r\n\r\n");
      if (end != std::string::npos) {
        const auto field = request.find("Content-Length: ");
        const std::size_t body =
            field == std::string::npos ? 0 : std::stoul(request.substr(field + 16));
        if (request.size() >= end + 4 + body) break;
      }
      if (stop_) return;
      if (!readable(client)) continue;
      const ssize_t got = ::recv(client, buffer, sizeof(buffer), 0);
      if (got <= 0) return;
      request.append(buffer, static_cast<std::size_t>(got));
    }
    const std::string body(200, 'x');
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    std::string at_once;
    std::string dripped = head + body;
    if (drip_ == Drip::kBody) {
      at_once = head;
      dripped = body;
    }
    if (!at_once.empty() && ::send(client, at_once.data(), at_once.size(), MSG_NOSIGNAL) < 0) {
      return;
    }
    for (const char byte : dripped) {
      if (stop_ || ::send(client, &byte, 1, MSG_NOSIGNAL) != 1) return;
      std::this_thread::sleep_for(interval_);
    }
  }

  const Drip drip_;
  const std::chrono::milliseconds interval_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace prodsafe::alerts::testing
