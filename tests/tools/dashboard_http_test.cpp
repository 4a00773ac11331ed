// The dashboard's HTTP layer: --listen parsing, the loopback test, and
// HttpServer (src/metrics/http_server.hpp) under requests a browser would
// never send: bodies in pieces, too large, chunked, late, garbage after a
// request, malformed heads, and more connections than it holds.
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "dashboard_server.hpp"
#include "http_exchange.hpp"
#include "http_server.hpp"
#include "support/raw_http.hpp"

namespace {

using namespace std::chrono_literals;
using prodsafe::cli::is_loopback_host;
using prodsafe::cli::parse_listen;
using prodsafe::metrics::detail::http_response;
using prodsafe::metrics::detail::HttpRequest;
using prodsafe::metrics::detail::HttpServer;
using prodsafe::metrics::detail::HttpServerOptions;
using prodsafe::testing::connect_to;
using prodsafe::testing::eventually;
using prodsafe::testing::parse_raw_reply;
using prodsafe::testing::raw_exchange;
using prodsafe::testing::read_until_closed;
using prodsafe::testing::send_all;
using prodsafe::testing::SteadyClock;

// ------------------------------------------------------------ --listen

TEST(ParseListenTest, HostAndPort) {
  using Pair = std::pair<std::string, int>;
  EXPECT_EQ(parse_listen("127.0.0.1:8080"), Pair("127.0.0.1", 8080));
  EXPECT_EQ(parse_listen("localhost:0"), Pair("localhost", 0));
  EXPECT_EQ(parse_listen("[::1]:9000"), Pair("::1", 9000));
  EXPECT_EQ(parse_listen("0.0.0.0:65535"), Pair("0.0.0.0", 65535));
  EXPECT_EQ(parse_listen(":8080"), Pair("127.0.0.1", 8080));  // loopback by default
}

TEST(ParseListenTest, MalformedIsRefused) {
  for (const char* bad : {"", "8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                          "127.0.0.1:80x", "127.0.0.1:x", "127.0.0.1: 80", "::1:8080", "fe80::1:80",
                          "[::1]", "[::1]8080", "[::1]:", "127.0.0.1:99999999999999999999"}) {
    EXPECT_FALSE(parse_listen(bad).has_value()) << "'" << bad << "'";
  }
}

TEST(IsLoopbackHostTest, LoopbackAddressesAndLocalhost) {
  for (const char* host :
       {"127.0.0.1", "127.1.2.3", "127.255.255.255", "::1", "0:0:0:0:0:0:0:1", "localhost"}) {
    EXPECT_TRUE(is_loopback_host(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "126.255.255.255", "[::1]",
                           "localhost.", "localhost.evil.example", "127.0.0.1.nip.io",
                           "evil.example", "::ffff:10.0.0.1", "", "127.1", "0x7f.0.0.1"}) {
    EXPECT_FALSE(is_loopback_host(host)) << host;
  }
}

// ------------------------------------------------------------ HttpServer

// An HttpServer whose handler records what it was handed and answers
// "<method> <path> <body>".
class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpServerOptions options) {
    server_ = std::make_unique<HttpServer>(
        std::move(options),
        [this](const HttpRequest& request) {
          {
            std::lock_guard lock(mutex_);
            seen_.push_back(request);
          }
          // The body even for HEAD: the server must not send it.
          return http_response(200, "text/plain",
                               request.method + " " + request.path + " " + request.body);
        },
        [this](std::string_view reason) {
          std::lock_guard lock(mutex_);
          drops_.emplace_back(reason);
        });
  }
  int port() const { return server_->port(); }
  std::vector<HttpRequest> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  std::vector<std::string> drops() {
    std::lock_guard lock(mutex_);
    return drops_;
  }

  std::mutex mutex_;
  std::vector<HttpRequest> seen_;   // guarded by mutex_
  std::vector<std::string> drops_;  // guarded by mutex_
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, ABodySplitAcrossSeveralWritesArrivesWhole) {
  start({.max_body_bytes = 1024});
  const int fd = connect_to(port());
  ASSERT_GE(fd, 0);
  // The head in two pieces (split inside "\r\n\r\n"), then the body in three.
  // The pauses make separate segments; the server must not answer early.
  const std::vector<std::string> pieces = {
      "POST /act HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r", "\nhello", " big", " world"};
  for (const std::string& piece : pieces) {
    ASSERT_TRUE(send_all(fd, piece));
    std::this_thread::sleep_for(30ms);
  }
  EXPECT_TRUE(seen().empty()) << "answered before the body was whole";
  ASSERT_TRUE(send_all(fd, "!"));
  const auto reply = parse_raw_reply(read_until_closed(fd, SteadyClock::now() + 3s), true);
  ::close(fd);
  EXPECT_EQ(reply.status, 200) << reply.raw;
  EXPECT_EQ(reply.body, "POST /act hello big world!");
  ASSERT_EQ(seen().size(), 1u);
  EXPECT_EQ(seen()[0].header("content-length"), "16");
  EXPECT_TRUE(seen()[0].peer.starts_with("127.0.0.1:")) << seen()[0].peer;
}

TEST_F(HttpServerTest, AContentLengthAboveTheLimitGets413WithoutReadingTheBody) {
  start({.max_body_bytes = 100});
  const auto reply =
      raw_exchange(port(), "POST /act HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n");
  EXPECT_EQ(reply.status, 413) << reply.raw;
  EXPECT_TRUE(reply.closed_in_time);
  EXPECT_TRUE(seen().empty());
  EXPECT_EQ(drops(), std::vector<std::string>{"body_too_large"});
  // A huge number too (no overflow into something small).
  EXPECT_EQ(
      raw_exchange(port(), "POST /act HTTP/1.1\r\nContent-Length: 18446744073709551617\r\n\r\nabc")
          .status,
      400);
  EXPECT_EQ(
      raw_exchange(port(), "POST /act HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n")
          .status,
      413);
}

TEST_F(HttpServerTest, AChunkedBodyGets411) {
  start({.max_body_bytes = 100});
  const auto reply = raw_exchange(
      port(),
      "POST /act HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(reply.status, 411) << reply.raw;
  EXPECT_TRUE(seen().empty());
}

TEST_F(HttpServerTest, AContentLengthThatIsNotANumberGets400) {
  start({.max_body_bytes = 100});
  for (const char* length : {"abc", "-1", "+5", "5x", "1e3", "0x10", "5, 5", ""}) {
    const auto reply = raw_exchange(
        port(), std::string("POST /act HTTP/1.1\r\nContent-Length: ") + length + "\r\n\r\n12345");
    EXPECT_EQ(reply.status, 400) << "Content-Length: '" << length << "': " << reply.raw;
  }
  EXPECT_TRUE(seen().empty());
  // Spaces around a number are not part of it.
  EXPECT_EQ(raw_exchange(port(), "POST /act HTTP/1.1\r\nContent-Length:   5  \r\n\r\n12345").body,
            "POST /act 12345");
}

TEST_F(HttpServerTest, ABodyArrivingAfterTheRequestTimeoutGets408) {
  start({.request_timeout = 300ms, .max_body_bytes = 100});
  const int fd = connect_to(port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "POST /act HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345"));
  const auto sent = SteadyClock::now();
  // The server gives up at the timeout: its 408 (and close) is what arrives.
  const auto reply = parse_raw_reply(read_until_closed(fd, sent + 3s), true);
  const auto waited = SteadyClock::now() - sent;
  send_all(fd, "67890");  // too late: whatever happens to it, no request runs
  ::close(fd);
  EXPECT_EQ(reply.status, 408) << reply.raw;
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 2s);
  EXPECT_TRUE(seen().empty());
  EXPECT_EQ(drops(), std::vector<std::string>{"request_timeout"});
}

TEST_F(HttpServerTest, GarbagePipelinedAfterARequestIsIgnored) {
  start({.max_body_bytes = 100});
  const auto reply = raw_exchange(port(),
                                  "POST /one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                                  "GET /two HTTP/1.1\r\n\r\n\x01\x02garbage\r\n\r\n");
  EXPECT_EQ(reply.status, 200) << reply.raw;
  EXPECT_EQ(reply.body, "POST /one abc");
  EXPECT_EQ(reply.raw.find("HTTP/1.1", 5), std::string::npos) << "a second response: " << reply.raw;
  ASSERT_EQ(seen().size(), 1u);
  // Without a body limit (MetricsServer's case) the same.
  server_.reset();
  seen_.clear();
  start({.max_body_bytes = 0});
  const auto again =
      raw_exchange(port(), "GET /one HTTP/1.1\r\n\r\nGET /two HTTP/1.1\r\n\r\n\xff\xfe\r\n\r\n");
  EXPECT_EQ(again.body, "GET /one ");
  EXPECT_EQ(seen().size(), 1u);
}

TEST_F(HttpServerTest, AMalformedHeadGets400) {
  start({.max_body_bytes = 100});
  for (const char* head : {
           "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
           "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
           "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
           "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
           "GET /\r\n\r\n",
           "GET / HTTP/2.0\r\n\r\n",
           "GET  / HTTP/1.1\r\n\r\n",
           "GET http://evil.example/ HTTP/1.1\r\n\r\n",
           "\r\n\r\n",
       }) {
    const auto reply = raw_exchange(port(), head);
    EXPECT_EQ(reply.status, 400) << head << " -> " << reply.raw;
  }
  EXPECT_TRUE(seen().empty());
}

// RFC 9110 9.3.2: the answer to HEAD has no body, whatever the handler
// returned (its Content-Length stays that of the GET).
TEST_F(HttpServerTest, HeadIsHandedToTheHandlerAndAnsweredWithoutABody) {
  start({.max_body_bytes = 100});
  const auto reply = raw_exchange(port(), "HEAD /page HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(reply.status, 200) << reply.raw;
  EXPECT_EQ(reply.header("Content-Length"), std::to_string(std::string("HEAD /page ").size()));
  EXPECT_EQ(reply.body, "");
  ASSERT_EQ(seen().size(), 1u);
  EXPECT_EQ(seen()[0].method, "HEAD");
}

TEST_F(HttpServerTest, MoreConnectionsThanItHoldsEvictTheOldestAndItKeepsServing) {
  start({.max_connections = 8, .max_body_bytes = 100});
  // Thirty idle connections that never send anything.
  std::vector<int> idle;
  for (int i = 0; i < 30; ++i) {
    const int fd = connect_to(port());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  // Each new request still gets its answer, quickly.
  for (int i = 0; i < 5; ++i) {
    const auto started = SteadyClock::now();
    const auto reply = raw_exchange(port(), "POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nok");
    EXPECT_EQ(reply.body, "POST /x ok") << reply.raw;
    EXPECT_LT(SteadyClock::now() - started, 1s);
  }
  EXPECT_TRUE(eventually([&] { return drops().size() >= 22; })) << drops().size() << " evicted";
  for (const std::string& reason : drops()) EXPECT_EQ(reason, "evicted");
  // The oldest idle connection was closed by the server: it reads the end.
  pollfd polled{idle.front(), POLLIN, 0};
  ASSERT_EQ(::poll(&polled, 1, 1000), 1);
  char byte = 0;
  EXPECT_LE(::recv(idle.front(), &byte, 1, 0), 0);
  for (const int fd : idle) ::close(fd);
}

TEST_F(HttpServerTest, AHandlerThatThrowsGets500AndTheServerCarriesOn) {
  server_ = std::make_unique<HttpServer>(HttpServerOptions{.max_body_bytes = 10},
                                         [](const HttpRequest& request) -> std::string {
                                           if (request.path == "/throw") {
                                             throw std::runtime_error("boom");
                                           }
                                           return http_response(200, "text/plain", "fine");
                                         });
  EXPECT_EQ(raw_exchange(port(), "GET /throw HTTP/1.1\r\n\r\n").status, 500);
  EXPECT_EQ(raw_exchange(port(), "GET /fine HTTP/1.1\r\n\r\n").body, "fine");
}

}  // namespace
