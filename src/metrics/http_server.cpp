#include "http_server.hpp"

#include "server_socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"

namespace prodsafe::metrics::detail {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// After its response, a connection is read (and what arrives discarded) until
// the client closes, for at most this long: closing with unread bytes would
// send a reset that can destroy the response before the client reads it.
constexpr milliseconds kLinger{1000};
// Accepts per loop turn, so a flood of connections never starves the reads
// of those already accepted.
constexpr int kAcceptBatch = 16;
// How long accepting pauses when the process is out of descriptors (the
// pending connection stays in the kernel's queue meanwhile).
constexpr milliseconds kAcceptPause{100};

struct Connection {
  enum class State { kReading, kWriting, kLingering };
  Descriptor socket;
  SteadyClock::time_point accepted;
  SteadyClock::time_point deadline;
  State state = State::kReading;
  std::string peer;
  std::string received;
  // Once the head has arrived: the request, and where its body starts.
  std::optional<HttpRequest> request;
  std::size_t body_start = 0;
  std::size_t body_length = 0;
  std::string response;
  std::size_t sent = 0;
  bool closed = false;
};

// Which connection a new one replaces when all are taken: one that already
// has its response first, then one still reading, then one being answered;
// the oldest within each.
int eviction_rank(Connection::State state) noexcept {
  switch (state) {
    case Connection::State::kLingering:
      return 0;
    case Connection::State::kReading:
      return 1;
    case Connection::State::kWriting:
      return 2;
  }
  return 2;
}

// Content-Length as a number, or nullopt when it is not one.
std::optional<std::size_t> content_length(std::string_view text) noexcept {
  std::size_t value = 0;
  const auto [stop, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || stop != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// "host:port" of a peer's address ("[v6]:port" for IPv6).
std::string peer_text(const sockaddr_storage& address) {
  char host[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    ::inet_ntop(AF_INET, &v4.sin_addr, host, sizeof(host));
    return fmt::format("{}:{}", host, ntohs(v4.sin_port));
  }
  if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    ::inet_ntop(AF_INET6, &v6.sin6_addr, host, sizeof(host));
    return fmt::format("[{}]:{}", host, ntohs(v6.sin6_port));
  }
  return "unknown";
}

}  // namespace

std::string http_base_url(const std::string& host, int port) {
  return host.find(':') == std::string::npos ? fmt::format("http://{}:{}", host, port)
                                             : fmt::format("http://[{}]:{}", host, port);
}

// Everything below runs on the server's thread, except the constructor and
// the destructor (which only signal `wake` and join).
struct HttpServer::Impl {
  Impl(HttpServerOptions options_in, HttpHandler handler_in, DropObserver on_drop_in)
      : options(std::move(options_in)),
        handler(std::move(handler_in)),
        on_drop(std::move(on_drop_in)) {}

  void run() noexcept;
  void turn();
  void accept_new(SteadyClock::time_point now);
  void on_readable(Connection& connection, SteadyClock::time_point now);
  // After bytes arrived: answers once the head (and any body) is whole.
  void on_received(Connection& connection, SteadyClock::time_point now);
  void on_writable(Connection& connection, SteadyClock::time_point now);
  void answer(Connection& connection, std::string response, SteadyClock::time_point now);
  void expire(Connection& connection);
  void dropped(std::string_view reason) {
    if (on_drop) on_drop(reason);
  }

  const HttpServerOptions options;
  const HttpHandler handler;
  const DropObserver on_drop;
  Descriptor listener;
  Descriptor wake;  // an eventfd the destructor writes to stop the loop
  int port = 0;
  std::atomic<bool> stopping{false};
  std::thread thread;
  // Owned by the server's thread.
  std::vector<Connection> connections;
  std::vector<pollfd> polled;
  SteadyClock::time_point accept_paused_until{};
};

void HttpServer::Impl::run() noexcept {
  while (!stopping.load(std::memory_order_acquire)) {
    try {
      turn();
    } catch (const std::exception& error) {
      // Out of memory, most likely: drop every connection and carry on.
      logger()->error("http server on port {}: {}; closing its {} connections", port, error.what(),
                      connections.size());
      connections.clear();
    }
  }
  connections.clear();
}

void HttpServer::Impl::turn() {
  auto now = SteadyClock::now();
  for (auto& connection : connections) {
    if (connection.deadline <= now) expire(connection);
  }
  std::erase_if(connections, [](const Connection& c) { return c.closed; });

  const bool accepting = now >= accept_paused_until;
  auto wake_at = accepting ? SteadyClock::time_point::max() : accept_paused_until;
  polled.clear();
  polled.push_back({wake.get(), POLLIN, 0});
  polled.push_back({accepting ? listener.get() : -1, POLLIN, 0});
  for (const auto& connection : connections) {
    const short events = connection.state == Connection::State::kWriting ? POLLOUT : POLLIN;
    polled.push_back({connection.socket.get(), events, 0});
    wake_at = std::min(wake_at, connection.deadline);
  }
  int timeout = -1;
  if (wake_at != SteadyClock::time_point::max()) {
    timeout = static_cast<int>(std::clamp<milliseconds::rep>(
        std::chrono::ceil<milliseconds>(wake_at - now).count(), 0, 60'000));
  }
  const int ready = ::poll(polled.data(), polled.size(), timeout);
  if (ready <= 0) return;              // a deadline passed, or EINTR
  if (polled[0].revents != 0) return;  // stopping

  now = SteadyClock::now();
  for (std::size_t i = 0; i < connections.size(); ++i) {
    const short revents = polled[i + 2].revents;
    if (revents == 0) continue;
    Connection& connection = connections[i];
    if (connection.state == Connection::State::kWriting) {
      on_writable(connection, now);
    } else {
      on_readable(connection, now);
    }
  }
  std::erase_if(connections, [](const Connection& c) { return c.closed; });
  if (polled[1].revents != 0) accept_new(now);
}

void HttpServer::Impl::accept_new(SteadyClock::time_point now) {
  for (int i = 0; i < kAcceptBatch; ++i) {
    sockaddr_storage address{};
    socklen_t address_size = sizeof(address);
    Descriptor socket(::accept4(listener.get(), reinterpret_cast<sockaddr*>(&address),
                                &address_size, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (socket.get() < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        accept_paused_until = now + kAcceptPause;
      }
      return;  // EAGAIN: none left; ECONNABORTED and the like: the client gave up
    }
    if (connections.size() >= options.max_connections) {
      auto victim = std::min_element(
          connections.begin(), connections.end(), [](const Connection& a, const Connection& b) {
            const int rank_a = eviction_rank(a.state);
            const int rank_b = eviction_rank(b.state);
            return rank_a != rank_b ? rank_a < rank_b : a.accepted < b.accepted;
          });
      if (victim->state != Connection::State::kLingering) dropped("evicted");
      connections.erase(victim);
    }
    Connection& connection = connections.emplace_back();
    connection.socket = std::move(socket);
    connection.peer = peer_text(address);
    connection.accepted = now;
    connection.deadline = now + options.request_timeout;
    // A client usually sends its request with the connection: answer it now,
    // before more connections arrive that could replace it.
    on_readable(connection, now);
    if (connection.closed) connections.pop_back();
  }
}

void HttpServer::Impl::on_readable(Connection& connection, SteadyClock::time_point now) {
  char buffer[16 * 1024];
  for (;;) {
    const ssize_t got = ::recv(connection.socket.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (got <= 0) {  // the client closed, or the connection broke
      connection.closed = true;
      return;
    }
    // Discarded, one buffer a turn: a client that keeps sending must not hold
    // the thread past the linger deadline.
    if (connection.state == Connection::State::kLingering) return;
    const std::size_t scanned = connection.received.size();
    connection.received.append(buffer, static_cast<std::size_t>(got));
    if (!connection.request) {
      // The head may end up to 3 bytes before what arrived now.
      const std::size_t from = scanned < 3 ? 0 : scanned - 3;
      const std::size_t end = end_of_head(std::string_view(connection.received).substr(from));
      if (end == std::string_view::npos || from + end > options.max_header_bytes) {
        if (connection.received.size() > options.max_header_bytes) {
          dropped("header_too_large");
          answer(connection, error_response(431), now);
          return;
        }
        continue;
      }
      auto request =
          parse_request_head(std::string_view(connection.received).substr(0, from + end));
      if (!request) {
        answer(connection, error_response(400), now);
        return;
      }
      if (options.max_body_bytes == 0) {
        // Bodies are not read: answer now; lingering discards what follows.
      } else if (request->header("transfer-encoding")) {
        answer(connection, error_response(411), now);
        return;
      } else if (const auto length = request->header("content-length")) {
        const auto value = content_length(*length);
        if (!value) {
          answer(connection, error_response(400), now);
          return;
        }
        if (*value > options.max_body_bytes) {
          dropped("body_too_large");
          answer(connection, error_response(413), now);
          return;
        }
        connection.body_length = *value;
      }
      connection.body_start = from + end;
      connection.request = std::move(request);
    }
    if (connection.received.size() >= connection.body_start + connection.body_length) {
      on_received(connection, now);
      return;
    }
  }
}

void HttpServer::Impl::on_received(Connection& connection, SteadyClock::time_point now) {
  HttpRequest& request = *connection.request;
  request.body = connection.received.substr(connection.body_start, connection.body_length);
  request.peer = connection.peer;
  request.local_port = port;
  std::string response;
  try {
    response = handler(request);
  } catch (const std::exception& error) {
    logger()->error("http server on port {}: {} {} failed: {}", port, request.method, request.path,
                    error.what());
    response = error_response(500);
  }
  // The answer to HEAD is the head of the answer to GET (RFC 9110 9.3.2):
  // its Content-Length stays, its body is not sent, whatever the handler did.
  if (request.method == "HEAD") {
    const std::size_t head_end = response.find("\r\n\r\n");
    if (head_end != std::string::npos) response.resize(head_end + 4);
  }
  connection.request.reset();
  answer(connection, std::move(response), now);
}

void HttpServer::Impl::answer(Connection& connection, std::string response,
                              SteadyClock::time_point now) {
  connection.received.clear();
  connection.received.shrink_to_fit();
  connection.response = std::move(response);
  connection.state = Connection::State::kWriting;
  connection.deadline = now + options.response_timeout;
  on_writable(connection, now);
}

void HttpServer::Impl::on_writable(Connection& connection, SteadyClock::time_point now) {
  while (connection.sent < connection.response.size()) {
    const ssize_t sent =
        ::send(connection.socket.get(), connection.response.data() + connection.sent,
               connection.response.size() - connection.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (sent < 0) {  // EPIPE, ECONNRESET: the client left
      connection.closed = true;
      return;
    }
    connection.sent += static_cast<std::size_t>(sent);
  }
  connection.response.clear();
  connection.response.shrink_to_fit();
  ::shutdown(connection.socket.get(), SHUT_WR);
  connection.state = Connection::State::kLingering;
  connection.deadline = std::min(connection.deadline, now + kLinger);
}

void HttpServer::Impl::expire(Connection& connection) {
  if (connection.state == Connection::State::kReading) {
    // Best effort: tell the client why, if its socket takes the bytes now.
    const std::string response = error_response(408);
    [[maybe_unused]] const ssize_t sent = ::send(connection.socket.get(), response.data(),
                                                 response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    dropped("request_timeout");
  } else if (connection.state == Connection::State::kWriting) {
    dropped("response_timeout");
  }
  connection.closed = true;
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler, DropObserver on_drop)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler), std::move(on_drop))) {
  impl_->listener = listen_on(impl_->options.host, impl_->options.port);
  impl_->port = bound_port(impl_->listener.get());
  impl_->wake = Descriptor(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (impl_->wake.get() < 0) {
    throw IoError(fmt::format("cannot serve HTTP: eventfd: {}", std::strerror(errno)));
  }
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

HttpServer::~HttpServer() {
  impl_->stopping.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(impl_->wake.get(), &one, sizeof(one));
  if (impl_->thread.joinable()) impl_->thread.join();
}

int HttpServer::port() const noexcept { return impl_->port; }

}  // namespace prodsafe::metrics::detail
