// /metrics and /healthz over real HTTP on loopback, and what the server does
// under clients that are slow, idle, numerous or oversized.
#include "prodsafe/metrics/metrics_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/build_info.hpp"
#include "prodsafe/metrics/cardinality_guard.hpp"
#include "support/descriptor_limit.hpp"
#include "support/raw_http.hpp"

namespace prodsafe::metrics {
namespace {

using namespace std::chrono_literals;
using prodsafe::testing::SteadyClock;

using prodsafe::testing::connect_to;
using prodsafe::testing::read_until_closed;
using prodsafe::testing::send_all;
using Reply = prodsafe::testing::RawReply;

// Sends `request` on a new connection and reads the whole response, waiting
// at most `limit` for the server to finish and close.
Reply exchange(int port, std::string_view request, std::chrono::milliseconds limit = 2000ms) {
  return prodsafe::testing::raw_exchange(port, request, limit);
}

Reply get(int port, std::string_view path, std::chrono::milliseconds limit = 2000ms) {
  return exchange(port, "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", limit);
}

// prodsafe_metrics_server_dropped_connections_total{reason=...} as the
// registry holds it now.
double dropped(const Registry& registry, std::string_view reason) {
  const std::string page = registry.serialize();
  const std::string series =
      "prodsafe_metrics_server_dropped_connections_total{reason=\"" + std::string(reason) + "\"} ";
  const auto at = page.find(series);
  return at == std::string::npos ? -1 : std::atof(page.c_str() + at + series.size());
}

std::size_t open_descriptors() {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++count;
  }
  return count;
}

TEST(MetricsServerTest, ServesTheRegistryAtMetrics) {
  Registry registry;
  auto& orders = registry.counter("prodsafe_orders_total", "Orders placed.", {"side"});
  orders.labels({"buy"}).inc(3);
  MetricsServer server(registry);
  EXPECT_EQ(server.url(), "http://127.0.0.1:" + std::to_string(server.port()) + "/metrics");

  httplib::Client client("127.0.0.1", server.port());
  auto response = client.Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(response->body.find("prodsafe_orders_total{side=\"buy\"} 3\n"), std::string::npos)
      << response->body;

  orders.labels({"sell"}).inc();  // a scrape sees the registry as it is now
  response = client.Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_NE(response->body.find("prodsafe_orders_total{side=\"sell\"} 1\n"), std::string::npos);
  EXPECT_EQ(client.Get("/other")->status, 404);
  EXPECT_EQ(client.Post("/metrics", "x", "text/plain")->status, 405);
  response = client.Head("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "");
}

TEST(MetricsServerTest, HealthzAnswersOk) {
  Registry registry;
  MetricsServer server(registry);
  const Reply reply = get(server.port(), "/healthz");
  EXPECT_TRUE(reply.closed_in_time);
  EXPECT_EQ(reply.status, 200) << reply.raw;
  EXPECT_EQ(reply.body, "ok\n");
}

TEST(MetricsServerTest, BuildInfoIsServedAndPromtoolAcceptsThePage) {
  Registry registry;
  registry.counter("prodsafe_orders_total", "Orders placed.", {"side"}).labels({"buy"}).inc();
  registry.histogram("prodsafe_claim_seconds", "Claims.", {}, {0.1, 1}).labels({}).observe(0.5);
  MetricsServer server(registry);
  const Reply reply = get(server.port(), "/metrics");
  ASSERT_EQ(reply.status, 200) << reply.raw;
  EXPECT_EQ(build_version(), "0.1.0");
  EXPECT_NE(
      reply.body.find("prodsafe_build_info{version=\"" + std::string(build_version()) + "\"} 1\n"),
      std::string::npos)
      << reply.body;

  const auto page = std::filesystem::temp_directory_path() /
                    ("prodsafe_metrics_page_" + std::to_string(::getpid()) + ".txt");
  std::ofstream(page) << reply.body;
  const std::string command = "promtool check metrics < " + page.string();
  EXPECT_EQ(std::system(command.c_str()), 0) << reply.body;
  std::filesystem::remove(page);
}

// cpp-httplib's 8 workers each stayed with a client that sent a byte every
// few seconds, and every scrape waited behind them.
TEST(MetricsServerTest, AScrapeAnswersWhileAHundredSlowClientsHoldConnections) {
  Registry registry;
  MetricsServer server(registry);
  std::vector<int> slow;
  for (int i = 0; i < 100; ++i) {
    const int fd = connect_to(server.port());
    ASSERT_GE(fd, 0);
    if (i % 2 == 0) send_all(fd, "GET /metrics HTTP/1.1\r\n");  // half of them send nothing
    slow.push_back(fd);
  }
  std::atomic<bool> done{false};
  std::thread dripper([&] {
    while (!done.load()) {
      for (int fd : slow) send_all(fd, "X");
      std::this_thread::sleep_for(100ms);
    }
  });
  for (int scrape = 0; scrape < 3; ++scrape) {
    const auto start = SteadyClock::now();
    const Reply reply = get(server.port(), "/metrics", 2000ms);
    EXPECT_EQ(reply.status, 200) << "scrape " << scrape << ": " << reply.raw;
    EXPECT_LT(SteadyClock::now() - start, 1s);
  }
  done = true;
  dripper.join();
  for (int fd : slow) ::close(fd);
  // 100 slow clients and a scrape through 64 connections (a later scrape
  // finds the earlier one's connection closed).
  EXPECT_GE(dropped(registry, "evicted"), 100 + 1 - 64);
}

// New connections keep arriving (and staying silent) as fast as one thread
// can open them: each scrape still gets its answer.
TEST(MetricsServerTest, AScrapeAnswersDuringAFloodOfNewConnections) {
  Registry registry;
  MetricsServer server(registry);
  std::atomic<bool> done{false};
  std::atomic<int> opened{0};
  std::thread flood([&] {
    std::vector<int> held(300, -1);
    for (std::size_t i = 0; !done.load(); i = (i + 1) % held.size()) {
      if (held[i] >= 0) ::close(held[i]);
      held[i] = connect_to(server.port());
      ++opened;
    }
    for (int fd : held) {
      if (fd >= 0) ::close(fd);
    }
  });
  while (opened.load() < 500) std::this_thread::sleep_for(1ms);
  for (int scrape = 0; scrape < 5; ++scrape) {
    const Reply reply = get(server.port(), "/metrics", 2000ms);
    EXPECT_EQ(reply.status, 200) << "scrape " << scrape << ": " << reply.raw;
  }
  done = true;
  flood.join();
}

// Restores the process's descriptor limit at the end of a test.
class NofileLimit {
 public:
  NofileLimit() { ::getrlimit(RLIMIT_NOFILE, &saved_); }
  ~NofileLimit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  bool lower_to(rlim_t soft) {
    rlimit lowered = saved_;
    lowered.rlim_cur = soft;
    return ::setrlimit(RLIMIT_NOFILE, &lowered) == 0;
  }

 private:
  rlimit saved_{};
};

// cpp-httplib accepted every connection: 2,000 idle ones took 2,000 of the
// application's descriptors, and past `ulimit -n` its own sockets failed.
TEST(MetricsServerTest, TwoThousandIdleConnectionsLeaveTheApplicationsDescriptorsAlone) {
  constexpr int kIdle = 2000;
  constexpr int kApplicationSockets = 200;
  Registry registry;
  const MetricsServerOptions options;
  MetricsServer server(registry, options);
  const std::size_t before = open_descriptors();
  NofileLimit limit;
  ASSERT_TRUE(limit.lower_to(before + options.max_connections + kApplicationSockets + 50));

  // The attacker is another process, so its descriptors are its own.
  int ready[2];
  int finish[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(finish, O_CLOEXEC), 0);
  const pid_t attacker = ::fork();
  ASSERT_GE(attacker, 0);
  if (attacker == 0) {
    // Async-signal-safe calls only: the parent has threads.
    ::close(ready[0]);
    ::close(finish[1]);
    rlimit raised{};
    ::getrlimit(RLIMIT_NOFILE, &raised);
    raised.rlim_cur = raised.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &raised);
    char connected = 0;
    // A connect that fails means the server stopped accepting (its queue is
    // full): a fact the parent's checks will show.
    for (int i = 0; i < kIdle && connect_to(server.port()) >= 0; ++i) connected = 1;
    [[maybe_unused]] ssize_t io = ::write(ready[1], &connected, 1);
    io = ::read(finish[0], &connected, 1);  // until the parent closes its end
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(finish[0]);
  char connected = 0;
  ASSERT_EQ(::read(ready[0], &connected, 1), 1);
  EXPECT_EQ(connected, 1);
  std::this_thread::sleep_for(200ms);  // let the server accept what is queued

  const std::size_t held = open_descriptors() - before;
  // The two pipes to the attacker are the only other new descriptors.
  EXPECT_LE(held, options.max_connections + 2) << "the server holds " << held << " descriptors";
  // The application still opens its own connections.
  std::vector<int> application;
  for (int i = 0; i < kApplicationSockets; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    application.push_back(fd);
  }
  EXPECT_EQ(application.size(), static_cast<std::size_t>(kApplicationSockets))
      << "the process ran out of descriptors";
  for (int fd : application) ::close(fd);
  const Reply reply = get(server.port(), "/metrics");
  EXPECT_EQ(reply.status, 200) << reply.raw;

  ::close(finish[1]);
  ::close(ready[0]);
  ::kill(attacker, SIGKILL);  // in case it did not see the pipe close
  int status = 0;
  ::waitpid(attacker, &status, 0);
}

TEST(MetricsServerTest, AnOversizedHeadGets431AndTheServerCarriesOn) {
  Registry registry;
  MetricsServer server(registry);  // max_header_bytes: 8 KiB
  const std::string big =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + std::string(9000, 'a') +
      "\r\n\r\n";
  const Reply refused = exchange(server.port(), big);
  EXPECT_EQ(refused.status, 431) << refused.raw;
  EXPECT_TRUE(refused.closed_in_time);
  EXPECT_EQ(dropped(registry, "header_too_large"), 1);
  EXPECT_EQ(get(server.port(), "/metrics").status, 200);
}

// cpp-httplib's timeout limited each read, so a byte every 200 ms held a
// worker for as long as the client liked.
TEST(MetricsServerTest, ARequestDrippedByteByByteIsCutAtTheRequestTimeout) {
  Registry registry;
  MetricsServer server(registry, {.request_timeout = 1000ms});
  const int fd = connect_to(server.port());
  ASSERT_GE(fd, 0);
  const auto start = SteadyClock::now();
  const std::string request =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(200, 'a') + "\r\n\r\n";
  std::string received;
  for (char byte : request) {
    if (::send(fd, &byte, 1, MSG_NOSIGNAL) != 1) break;
    received = read_until_closed(fd, SteadyClock::now() + 200ms);
    if (!received.empty()) break;
  }
  const auto elapsed = SteadyClock::now() - start;
  ::close(fd);
  EXPECT_TRUE(received.starts_with("HTTP/1.1 408 ")) << received;
  EXPECT_GE(elapsed, 900ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_EQ(dropped(registry, "request_timeout"), 1);
  EXPECT_EQ(dropped(registry, "evicted"), 0);
}

// A client that asks for a page larger than the sockets' buffers and never
// reads it is closed at the response timeout, not held for good.
TEST(MetricsServerTest, AClientThatDoesNotReadIsClosedAtTheResponseTimeout) {
  MetricsCardinalityGuard guard(GuardOptions{.max_label_sets = 20'000});
  Registry registry(&guard);
  auto& family = registry.gauge("prodsafe_wide", "A page of about 8 MB.", {"name"});
  for (int i = 0; i < 16'000; ++i) {
    family.labels({std::string(500, static_cast<char>('a' + i % 26)) + std::to_string(i)}).set(i);
  }
  const std::size_t page_size = registry.serialize().size();
  ASSERT_GT(page_size, 8'000'000u);  // over the kernel's 4 MB send buffer limit
  MetricsServer server(registry, {.response_timeout = 500ms});

  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(server.port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  send_all(fd, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  std::this_thread::sleep_for(1500ms);  // reads nothing meanwhile
  const std::string received = read_until_closed(fd, SteadyClock::now() + 5s);
  ::close(fd);
  EXPECT_LT(received.size(), page_size);
  EXPECT_EQ(dropped(registry, "response_timeout"), 1);
}

TEST(MetricsServerTest, AMalformedRequestGets400) {
  Registry registry;
  MetricsServer server(registry);
  EXPECT_EQ(exchange(server.port(), "HELLO\r\n\r\n").status, 400);
  EXPECT_EQ(exchange(server.port(), "GET /metrics SPDY/3\r\n\r\n").status, 400);
  EXPECT_EQ(exchange(server.port(), "GET /metrics?x=1 HTTP/1.0\n\n").status, 200);
}

TEST(MetricsServerTest, OptionsOutOfRangeAreRefusedNamingTheField) {
  Registry registry;
  const auto refused = [&](MetricsServerOptions options, std::string_view field) {
    try {
      MetricsServer server(registry, std::move(options));
      ADD_FAILURE() << field << " was accepted";
    } catch (const InvalidArgument& error) {
      EXPECT_NE(std::string(error.what()).find(field), std::string::npos) << error.what();
    }
  };
  refused({.port = 70000}, "port");
  refused({.max_connections = 0}, "max_connections");
  refused({.request_timeout = 0ms}, "request_timeout");
  refused({.response_timeout = -5ms}, "response_timeout");
  refused({.response_timeout = std::chrono::hours(24)}, "response_timeout");
  refused({.max_header_bytes = 10}, "max_header_bytes");
  refused({.host = ""}, "host");
}

// A metrics server that cannot listen is a local failure (IoError) or a
// configuration to fix (ConfigError), never a retryable StoreUnavailable.
template <class Expected>
void expect_refused(const MetricsServerOptions& options, std::string_view named) {
  Registry registry;
  try {
    MetricsServer server(registry, options);
    ADD_FAILURE() << "served on " << options.host << ":" << options.port;
  } catch (const Expected& error) {
    EXPECT_FALSE(error.retryable()) << error.what();
    EXPECT_NE(std::string(error.what()).find(named), std::string::npos) << error.what();
  } catch (const std::exception& error) {
    ADD_FAILURE() << "expected " << to_string(Expected("").code()) << ", got: " << error.what();
  }
}

TEST(MetricsServerTest, AnAddressThatIsNotLocalIsAnIoError) {
  // 203.0.113.1 is TEST-NET-3: never assigned to this machine, so bind() fails
  // (nothing is sent anywhere).
  expect_refused<IoError>({.host = "203.0.113.1", .port = 9464}, "203.0.113.1:9464");
}

TEST(MetricsServerTest, APortInUseIsAnIoError) {
  Registry registry;
  MetricsServer first(registry, {.host = "127.0.0.1", .port = 0});
  const std::string port = std::to_string(first.port());
  expect_refused<IoError>({.host = "127.0.0.1", .port = first.port()}, "127.0.0.1:" + port);
}

TEST(MetricsServerTest, AHostThatDoesNotResolveIsAConfigError) {
  // .invalid never resolves (RFC 6761).
  expect_refused<ConfigError>({.host = "no-such-host.invalid", .port = 0}, "no-such-host.invalid");
}

TEST(MetricsServerTest, NoDescriptorLeftForTheWakeUpIsAnIoError) {
  if (prodsafe::testing::kDescriptorLimitBreaksSanitizer) {
    GTEST_SKIP() << prodsafe::testing::kDescriptorLimitSkip;
  }
  // One descriptor for the listening socket, none for its eventfd.
  prodsafe::testing::DescriptorLimit limit(1);
  ASSERT_TRUE(limit.ok());
  expect_refused<IoError>({.host = "127.0.0.1", .port = 0}, "eventfd");
}

}  // namespace
}  // namespace prodsafe::metrics
