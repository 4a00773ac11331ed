#include "prodsafe/metrics/metrics_server.hpp"

#include "http_exchange.hpp"
#include "server_socket.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/metrics/build_info.hpp"
#include "prodsafe/metrics/text_serializer.hpp"

namespace prodsafe::metrics {
namespace {

using SteadyClock = std::chrono::steady_clock;
using detail::Descriptor;
using std::chrono::milliseconds;

constexpr std::size_t kMaxConnections = 10'000;
constexpr milliseconds kMaxTimeout = std::chrono::minutes(10);
constexpr std::size_t kMinHeaderBytes = 256;
constexpr std::size_t kMaxHeaderBytes = 1024 * 1024;
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
  std::string received;
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

void check_timeout(std::string_view field, milliseconds value) {
  if (value.count() < 1 || value > kMaxTimeout) {
    throw InvalidArgument(
        fmt::format("MetricsServerOptions::{} must be between 1 ms and 10 min, got {} ms", field,
                    value.count()));
  }
}

}  // namespace

void validate_options(const MetricsServerOptions& options) {
  if (options.host.empty()) {
    throw InvalidArgument("MetricsServerOptions::host is empty; use 127.0.0.1 for loopback only");
  }
  if (options.port < 0 || options.port > 65535) {
    throw InvalidArgument(fmt::format(
        "MetricsServerOptions::port must be between 0 (any free port) and 65535, got {}",
        options.port));
  }
  if (options.max_connections < 1 || options.max_connections > kMaxConnections) {
    throw InvalidArgument(
        fmt::format("MetricsServerOptions::max_connections must be between 1 and {}, got {}",
                    kMaxConnections, options.max_connections));
  }
  check_timeout("request_timeout", options.request_timeout);
  check_timeout("response_timeout", options.response_timeout);
  if (options.max_header_bytes < kMinHeaderBytes || options.max_header_bytes > kMaxHeaderBytes) {
    throw InvalidArgument(
        fmt::format("MetricsServerOptions::max_header_bytes must be between {} and {}, got {}",
                    kMinHeaderBytes, kMaxHeaderBytes, options.max_header_bytes));
  }
}

// Everything below runs on the server's thread, except the constructor and
// the destructor (which only signal `wake` and join).
struct MetricsServer::Impl {
  Impl(Registry& registry_in, MetricsServerOptions options_in)
      : registry(registry_in), options(std::move(options_in)) {
    auto& dropped = registry.counter(
        "prodsafe_metrics_server_dropped_connections_total",
        "Connections the metrics server closed before it had answered them, by reason.",
        {"reason"});
    evicted = &dropped.labels({"evicted"});
    request_timed_out = &dropped.labels({"request_timeout"});
    response_timed_out = &dropped.labels({"response_timeout"});
    header_too_large = &dropped.labels({"header_too_large"});
  }

  void run() noexcept;
  void turn();
  void accept_new(SteadyClock::time_point now);
  void on_readable(Connection& connection, SteadyClock::time_point now);
  void on_writable(Connection& connection, SteadyClock::time_point now);
  void answer(Connection& connection, std::string response, SteadyClock::time_point now);
  void expire(Connection& connection);

  Registry& registry;
  const MetricsServerOptions options;
  Counter* evicted = nullptr;  // replaced by a new connection when all were taken
  Counter* request_timed_out = nullptr;
  Counter* response_timed_out = nullptr;
  Counter* header_too_large = nullptr;
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

void MetricsServer::Impl::run() noexcept {
  while (!stopping.load(std::memory_order_acquire)) {
    try {
      turn();
    } catch (const std::exception& error) {
      // Out of memory, most likely: drop every connection and carry on.
      logger()->error("metrics server: {}; closing its {} connections", error.what(),
                      connections.size());
      connections.clear();
    }
  }
  connections.clear();
}

void MetricsServer::Impl::turn() {
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

void MetricsServer::Impl::accept_new(SteadyClock::time_point now) {
  for (int i = 0; i < kAcceptBatch; ++i) {
    Descriptor socket(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
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
      if (victim->state != Connection::State::kLingering) evicted->inc();
      connections.erase(victim);
    }
    Connection& connection = connections.emplace_back();
    connection.socket = std::move(socket);
    connection.accepted = now;
    connection.deadline = now + options.request_timeout;
    // A client usually sends its request with the connection: answer it now,
    // before more connections arrive that could replace it.
    on_readable(connection, now);
    if (connection.closed) connections.pop_back();
  }
}

void MetricsServer::Impl::on_readable(Connection& connection, SteadyClock::time_point now) {
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
    // The head may end up to 3 bytes before what arrived now.
    const std::size_t from = scanned < 3 ? 0 : scanned - 3;
    const std::size_t end = detail::end_of_head(std::string_view(connection.received).substr(from));
    if (end != std::string_view::npos && from + end <= options.max_header_bytes) {
      const std::string head = connection.received.substr(0, from + end);
      answer(connection,
             detail::respond(head, [this] { return to_prometheus_text(registry.collect()); }), now);
      return;
    }
    if (connection.received.size() > options.max_header_bytes) {
      header_too_large->inc();
      answer(connection, detail::error_response(431), now);
      return;
    }
  }
}

void MetricsServer::Impl::answer(Connection& connection, std::string response,
                                 SteadyClock::time_point now) {
  connection.received.clear();
  connection.received.shrink_to_fit();
  connection.response = std::move(response);
  connection.state = Connection::State::kWriting;
  connection.deadline = now + options.response_timeout;
  on_writable(connection, now);
}

void MetricsServer::Impl::on_writable(Connection& connection, SteadyClock::time_point now) {
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

void MetricsServer::Impl::expire(Connection& connection) {
  if (connection.state == Connection::State::kReading) {
    // Best effort: tell the client why, if its socket takes the bytes now.
    const std::string response = detail::error_response(408);
    [[maybe_unused]] const ssize_t sent = ::send(connection.socket.get(), response.data(),
                                                 response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    request_timed_out->inc();
  } else if (connection.state == Connection::State::kWriting) {
    response_timed_out->inc();
  }
  connection.closed = true;
}

MetricsServer::MetricsServer(Registry& registry, MetricsServerOptions options) {
  validate_options(options);
  register_build_info(registry);
  impl_ = std::make_unique<Impl>(registry, std::move(options));
  impl_->listener = detail::listen_on(impl_->options.host, impl_->options.port);
  impl_->port = detail::bound_port(impl_->listener.get());
  impl_->wake = Descriptor(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (impl_->wake.get() < 0) {
    throw IoError(fmt::format("cannot serve metrics: eventfd: {}", std::strerror(errno)));
  }
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

MetricsServer::~MetricsServer() {
  impl_->stopping.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(impl_->wake.get(), &one, sizeof(one));
  if (impl_->thread.joinable()) impl_->thread.join();
}

int MetricsServer::port() const noexcept { return impl_->port; }

std::string MetricsServer::url() const {
  const std::string& host = impl_->options.host;
  return host.find(':') == std::string::npos
             ? fmt::format("http://{}:{}/metrics", host, impl_->port)
             : fmt::format("http://[{}]:{}/metrics", host, impl_->port);
}

}  // namespace prodsafe::metrics
