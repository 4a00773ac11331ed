// The chaos suite's TCP fault proxy, between prodsafe's Redis client and a
// real redis-server.
#include "chaos/framework/fault_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/connection.hpp"
#include "support/redis_fixture.hpp"

namespace prodsafe::chaos {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// Polls `condition` until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = SteadyClock::now() + timeout;
  while (!condition()) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

std::chrono::milliseconds since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start);
}

// A bare TCP client, to see exactly what the proxy does on the wire.
class RawClient {
 public:
  explicit RawClient(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    if (!connected_) connect_errno_ = errno;
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  [[nodiscard]] bool connected() const { return connected_; }
  [[nodiscard]] int connect_errno() const { return connect_errno_; }
  bool send(std::string_view bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Reads until `size` bytes came, the peer closed, or `timeout` passed.
  // last_errno() tells how a read ended early (0: EOF or timeout).
  std::string read(std::size_t size, std::chrono::milliseconds timeout) {
    std::string out;
    last_errno_ = 0;
    const auto deadline = SteadyClock::now() + timeout;
    while (out.size() < size) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (left.count() <= 0) break;
      pollfd item{fd_, POLLIN, 0};
      if (::poll(&item, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[256];
      const ssize_t n = ::recv(fd_, buffer, std::min(sizeof buffer, size - out.size()), 0);
      if (n < 0) last_errno_ = errno;
      if (n <= 0) {
        closed_ = true;
        break;
      }
      out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
  }
  [[nodiscard]] bool closed() const { return closed_; }
  [[nodiscard]] int last_errno() const { return last_errno_; }

 private:
  int fd_;
  bool connected_ = false;
  int connect_errno_ = 0;
  bool closed_ = false;
  int last_errno_ = 0;
};

class FaultProxyTest : public prodsafe::testing::RedisTest {
 protected:
  static redis::Options options(std::chrono::milliseconds command_timeout = 500ms) {
    redis::Options options = short_timeouts();
    options.command_timeout = command_timeout;
    return options;
  }
  static std::unique_ptr<redis::Connection> connect(
      const FaultProxy& proxy, std::chrono::milliseconds command_timeout = 500ms) {
    return std::make_unique<redis::Connection>(redis::parse_url(proxy.redis_url()),
                                               options(command_timeout));
  }
  // Opens a connection through the proxy and sends one PING; throws what
  // either throws.
  static void connect_and_ping(const FaultProxy& proxy) { connect(proxy)->command({"PING"}); }

  FaultProxyOptions to_server() const { return {.upstream_port = server().port()}; }
};

TEST_F(FaultProxyTest, ForwardsCommandsAndRepliesBothWays) {
  FaultProxy proxy(to_server());
  EXPECT_GT(proxy.port(), 0);
  EXPECT_NE(proxy.port(), server().port());
  redis::Client through(proxy.redis_url(), options());
  EXPECT_EQ(through.ping(), "PONG");
  through.set("k", "through the proxy");
  EXPECT_EQ(make_client()->get("k"), "through the proxy");

  const FaultProxyStats stats = proxy.stats();
  EXPECT_GE(stats.connections_accepted, 1u);
  EXPECT_GE(stats.connections_open, 1u);
  EXPECT_GT(stats.bytes_to_upstream, 0u);
  EXPECT_GT(stats.bytes_to_client, 0u);
  EXPECT_EQ(stats.resets, 0u);
  EXPECT_EQ(stats.bytes_dropped, 0u);
}

TEST_F(FaultProxyTest, LatencyDelaysEachDirection) {
  FaultProxy proxy(to_server());
  auto connection = connect(proxy, 5s);
  connection->command({"PING"});  // connected before the clock starts

  proxy.set_latency(50ms);
  const auto start = SteadyClock::now();
  EXPECT_EQ(connection->command({"PING"}).str(), "PONG");
  const auto elapsed = since(start);
  // 50 ms to the server and 50 ms back.
  EXPECT_GE(elapsed, 100ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_THROW(proxy.set_latency(-1ms), InvalidArgument);
}

TEST_F(FaultProxyTest, LoweringLatencyNeverLetsALaterChunkOvertake) {
  FaultProxy proxy(to_server());
  RawClient raw(proxy.port());
  ASSERT_TRUE(raw.connected());
  proxy.set_latency(300ms);
  const auto start = SteadyClock::now();
  ASSERT_TRUE(raw.send("SET k first\r\n"));
  proxy.set_latency(0ms);
  ASSERT_TRUE(raw.send("SET k second\r\n"));

  EXPECT_EQ(raw.read(10, 5s), "+OK\r\n+OK\r\n");
  EXPECT_GE(since(start), 300ms) << "the first SET was held";
  EXPECT_EQ(make_client()->get("k"), "second") << "the second SET must reach Redis last";
}

TEST_F(FaultProxyTest, ResetAllFailsTheNextCommandAndAReconnectWorks) {
  FaultProxy proxy(to_server());
  auto connection = connect(proxy);
  connection->command({"PING"});
  RawClient raw(proxy.port());
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(eventually([&] { return proxy.stats().connections_open == 2; }));

  EXPECT_EQ(proxy.reset_all(), 2u);
  EXPECT_THROW(connection->command({"PING"}), StoreUnavailable);
  (void)raw.read(1, 2s);
  EXPECT_TRUE(raw.closed());
  EXPECT_EQ(raw.last_errno(), ECONNRESET) << "a reset, not an orderly close";
  EXPECT_EQ(proxy.stats().resets, 2u);
  EXPECT_EQ(proxy.stats().connections_open, 0u);

  EXPECT_EQ(connect(proxy)->command({"PING"}).str(), "PONG");
  // A pooled client finds its way back on its own.
  redis::Client pooled(proxy.redis_url(), options());
  pooled.ping();
  proxy.reset_all();
  EXPECT_TRUE(eventually([&] {
    try {
      return pooled.ping() == "PONG";
    } catch (const StoreUnavailable&) {
      return false;
    }
  }));
}

TEST_F(FaultProxyTest, BlackholeMakesCommandsTimeOutUntilCleared) {
  FaultProxy proxy(to_server());
  auto connection = connect(proxy, 200ms);
  connection->command({"PING"});

  proxy.set_blackhole(true);
  const auto start = SteadyClock::now();
  EXPECT_THROW(connection->command({"PING"}), Timeout);
  EXPECT_GE(since(start), 190ms);
  EXPECT_LT(since(start), 2s);
  // New connections are accepted, but nothing they send is answered.
  auto during = connect(proxy, 200ms);
  EXPECT_THROW(during->command({"PING"}), Timeout);
  const FaultProxyStats stats = proxy.stats();
  EXPECT_GT(stats.bytes_dropped, 0u);
  EXPECT_EQ(stats.connections_open, 2u) << "a blackhole keeps connections open";
  EXPECT_EQ(stats.resets, 0u);

  proxy.set_blackhole(false);
  EXPECT_EQ(connect(proxy)->command({"PING"}).str(), "PONG");
}

TEST_F(FaultProxyTest, BlackholeDropsWhatLatencyStillHeld) {
  FaultProxy proxy(to_server());
  RawClient raw(proxy.port());
  ASSERT_TRUE(raw.connected());
  proxy.set_latency(200ms);
  ASSERT_TRUE(raw.send("SET held 1\r\n"));
  proxy.set_blackhole(true);
  proxy.set_latency(0ms);
  proxy.set_blackhole(false);
  ASSERT_TRUE(raw.send("PING\r\n"));
  // Only the PING's answer comes back; the SET never reached Redis.
  EXPECT_EQ(raw.read(7, 2s), "+PONG\r\n");
  EXPECT_EQ(make_client()->get("held"), std::nullopt);
  EXPECT_EQ(proxy.stats().bytes_dropped, std::string_view("SET held 1\r\n").size());
}

TEST_F(FaultProxyTest, RefuseResetsNewConnectionsAndKeepsOpenOnes) {
  FaultProxy proxy(to_server());
  auto open = connect(proxy);
  open->command({"PING"});

  proxy.set_refuse(true);
  EXPECT_THROW(connect_and_ping(proxy), StoreUnavailable);
  RawClient raw(proxy.port());
  (void)raw.read(1, 2s);
  EXPECT_TRUE(raw.closed());
  EXPECT_EQ(raw.last_errno(), ECONNRESET);
  EXPECT_EQ(open->command({"PING"}).str(), "PONG");
  EXPECT_EQ(proxy.stats().connections_refused, 2u);

  proxy.set_refuse(false);
  EXPECT_NO_THROW(connect_and_ping(proxy));
}

TEST_F(FaultProxyTest, CarriesManyConcurrentConnections) {
  FaultProxy proxy(to_server());
  constexpr int kSubscribers = 4;
  std::vector<std::unique_ptr<redis::Connection>> subscribers;
  for (int i = 0; i < kSubscribers; ++i) {
    subscribers.push_back(connect(proxy));
    const std::string_view channel = "fills";
    subscribers.back()->subscribe(std::span(&channel, 1));
  }
  redis::Options pool_options = options(2s);
  pool_options.pool_size = 16;
  pool_options.pool_checkout_timeout = 5s;
  redis::Client pooled(proxy.redis_url(), pool_options);
  constexpr int kThreads = 16;
  constexpr int kIncrements = 100;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        try {
          pooled.incr("counter");
        } catch (const Error&) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(make_client()->get("counter"), std::to_string(kThreads * kIncrements));
  EXPECT_EQ(pooled.command({"PUBLISH", "fills", "order-1"}).integer(), kSubscribers);
  for (auto& subscriber : subscribers) {
    const std::optional<redis::Reply> message = subscriber->next_message(2s);
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->array().at(2).str(), "order-1");
  }
  EXPECT_GT(proxy.stats().connections_open, static_cast<std::uint64_t>(kSubscribers));
}

TEST_F(FaultProxyTest, StopResetsOpenConnectionsAndReleasesThePort) {
  auto proxy = std::make_unique<FaultProxy>(to_server());
  auto idle = connect(*proxy);
  idle->command({"PING"});
  // One command held by latency when the proxy stops: it fails at once.
  proxy->set_latency(10s);
  auto waiting = connect(*proxy, 10s);
  auto pending = std::async(std::launch::async, [&] {
    const auto start = SteadyClock::now();
    try {
      waiting->command({"PING"});
    } catch (const StoreUnavailable&) {
    }
    return since(start);
  });
  ASSERT_TRUE(eventually([&] { return proxy->stats().connections_open == 2; }));

  const auto start = SteadyClock::now();
  proxy->stop();
  EXPECT_LT(since(start), 2s);
  EXPECT_LT(pending.get(), 5s);
  EXPECT_THROW(idle->command({"PING"}), StoreUnavailable);
  RawClient raw(proxy->port());
  EXPECT_FALSE(raw.connected());
  EXPECT_EQ(raw.connect_errno(), ECONNREFUSED);

  // After stop: setters return at once, nothing is left to reset.
  proxy->set_blackhole(true);
  EXPECT_EQ(proxy->reset_all(), 0u);
  proxy->stop();
  proxy.reset();
}

TEST_F(FaultProxyTest, UnreachableUpstreamResetsTheClient) {
  // A port nobody listens on: bound, never listened to, closed.
  int port = 0;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), size), 0);
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size), 0);
    port = ntohs(address.sin_port);
    ::close(fd);
  }
  FaultProxy proxy({.upstream_port = port});
  EXPECT_THROW(connect_and_ping(proxy), StoreUnavailable);
  EXPECT_TRUE(eventually([&] { return proxy.stats().upstream_failures >= 1; }));
  EXPECT_EQ(proxy.stats().connections_open, 0u);
}

TEST_F(FaultProxyTest, ServerKilledBehindTheProxyFailsCommandsUntilItIsBack) {
  FaultProxy proxy(to_server());
  auto connection = connect(proxy);
  connection->command({"PING"});
  server().kill();
  EXPECT_THROW(connection->command({"PING"}), StoreUnavailable);
  EXPECT_THROW(connect_and_ping(proxy), StoreUnavailable);
  server().restart();
  EXPECT_EQ(connect(proxy)->command({"PING"}).str(), "PONG");
  connection.reset();  // the client closes its side of the dead link
  EXPECT_TRUE(eventually([&] { return proxy.stats().connections_open == 0; }))
      << "links to the dead server are closed";
}

TEST_F(FaultProxyTest, BadSetupIsAClearError) {
  EXPECT_THROW((FaultProxy({.upstream_port = 0})), InvalidArgument);
  EXPECT_THROW((FaultProxy({.upstream_port = 6379, .listen_port = 70000})), InvalidArgument);
  try {
    FaultProxy taken({.upstream_port = 6379, .listen_port = server().port()});
    FAIL() << "listening on a taken port should throw";
  } catch (const IoError& error) {  // a local socket, not an unreachable store
    EXPECT_NE(std::string(error.what()).find(std::to_string(server().port())), std::string::npos)
        << error.what();
    EXPECT_FALSE(error.retryable());
  } catch (const std::exception& error) {
    FAIL() << "expected IoError, got: " << error.what();
  }
}

}  // namespace
}  // namespace prodsafe::chaos
