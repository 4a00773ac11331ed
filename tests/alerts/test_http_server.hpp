// Test-only: a real HTTP (or HTTPS) server on 127.0.0.1 (ephemeral port) that
// records every request and answers as told, optionally holding the answer
// until the test releases it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <httplib.h>

namespace prodsafe::alerts::testing {

struct ReceivedRequest {
  std::string path{};
  std::string content_type{};
  std::string user_agent{};
  std::string body{};
};

struct Reply {
  int status = 200;
  // Extra response headers, e.g. {{"Retry-After", "2"}}.
  std::vector<std::pair<std::string, std::string>> headers{};
  std::string body = "{}";
  // Answer only after release() (or after kHoldLimit, so a failing test ends).
  bool hold = false;
};

class TestHttpServer {
 public:
  // Called with the 0-based index of each request, in arrival order.
  using Responder = std::function<Reply(std::size_t index)>;
  static constexpr std::chrono::seconds kHoldLimit{10};

  explicit TestHttpServer(Responder responder = [](std::size_t) { return Reply{}; })
      : TestHttpServer("http", std::make_unique<httplib::Server>(), std::move(responder)) {}

  // HTTPS with the PEM certificate and private key at these paths.
  TestHttpServer(
      const std::string& cert_path, const std::string& key_path,
      Responder responder = [](std::size_t) { return Reply{}; })
      : TestHttpServer("https",
                       std::make_unique<httplib::SSLServer>(cert_path.c_str(), key_path.c_str()),
                       std::move(responder)) {}

  ~TestHttpServer() {
    release();
    server_->stop();
    thread_.join();
  }

  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string url(std::string_view path) const {
    return scheme_ + "://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

  // True once at least `count` requests arrived (held ones included).
  bool wait_for_requests(std::size_t count,
                         std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    std::unique_lock lock(mutex_);
    return arrived_.wait_for(lock, limit, [&] { return received_.size() >= count; });
  }

  [[nodiscard]] std::vector<ReceivedRequest> requests() const {
    std::lock_guard lock(mutex_);
    return received_;
  }

  void release() {
    {
      std::lock_guard lock(mutex_);
      released_ = true;
    }
    released_cv_.notify_all();
  }

 private:
  TestHttpServer(std::string scheme, std::unique_ptr<httplib::Server> server, Responder responder)
      : responder_(std::move(responder)), server_(std::move(server)), scheme_(std::move(scheme)) {
    if (!server_->is_valid()) throw std::runtime_error("test HTTP server: bad TLS setup");
    server_->Post(".*", [this](const httplib::Request& request, httplib::Response& response) {
      handle(request, response);
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("test HTTP server: cannot bind 127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // stop() before the accept loop runs would leave it running: wait for it.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!server_->is_running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  }

  void handle(const httplib::Request& request, httplib::Response& response) {
    std::size_t index = 0;
    {
      std::lock_guard lock(mutex_);
      index = received_.size();
      received_.push_back({request.path, request.get_header_value("Content-Type"),
                           request.get_header_value("User-Agent"), request.body});
    }
    arrived_.notify_all();
    const Reply reply = responder_(index);
    if (reply.hold) {
      std::unique_lock lock(mutex_);
      released_cv_.wait_for(lock, kHoldLimit, [this] { return released_; });
    }
    response.status = reply.status;
    for (const auto& [name, value] : reply.headers) response.set_header(name, value);
    response.set_content(reply.body, "application/json");
  }

  Responder responder_;
  std::unique_ptr<httplib::Server> server_;
  std::string scheme_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::condition_variable released_cv_;
  std::vector<ReceivedRequest> received_;
  bool released_ = false;
};

}  // namespace prodsafe::alerts::testing
