// WebhookOptions::timeout is a deadline for a whole attempt: an endpoint that
// drips its answer a byte at a time (every read finds a byte, so no per-read
// timeout fires) is cut off at the deadline, and the alerts behind it are
// still delivered. Real servers on 127.0.0.1; retry waits on a ManualClock.
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "drip_http_server.hpp"
#include "prodsafe/alerts/webhook_dispatcher.hpp"
#include "prodsafe/core/clock.hpp"
#include "resolve.hpp"
#include "support/log_capture.hpp"
#include "test_http_server.hpp"

namespace prodsafe::alerts {
namespace {

using namespace std::chrono_literals;
using testing::DripHttpServer;
using testing::TestHttpServer;
using Drip = DripHttpServer::Drip;

class WebhookDeadlineTest : public ::testing::TestWithParam<Drip> {
 protected:
  ManualClock clock;
};

TEST_P(WebhookDeadlineTest, ADrippingEndpointIsCutOffAtTheDeadline) {
  // 200+ bytes at one per 50 ms: over 10 s to answer in full.
  DripHttpServer drip(GetParam(), 50ms);
  TestHttpServer healthy;
  WebhookDispatcher dispatcher(
      WebhookOptions{.timeout = 500ms, .max_attempts = 2, .retry_delay = 0ms, .clock = &clock});

  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(dispatcher.enqueue({.url = drip.url("/hook"), .body = "{}"}));
  ASSERT_TRUE(dispatcher.enqueue({.url = healthy.url("/hook"), .body = "{}"}));
  ASSERT_TRUE(healthy.wait_for_requests(1, 10s));
  const auto took = std::chrono::steady_clock::now() - start;

  ASSERT_TRUE(dispatcher.flush(5s));
  EXPECT_EQ(dispatcher.failed(), 1u);
  EXPECT_EQ(dispatcher.delivered(), 1u);
  EXPECT_EQ(drip.connections(), 2) << "the attempt that timed out is retried";
  // Two attempts of 500 ms each, then the healthy endpoint.
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 2500ms) << "each attempt ends at its 500 ms deadline";
}

INSTANTIATE_TEST_SUITE_P(HeadersOrBody, WebhookDeadlineTest,
                         ::testing::Values(Drip::kHeaders, Drip::kBody), [](const auto& info) {
                           return info.param == Drip::kHeaders ? "Headers" : "Body";
                         });

// Replaces name lookups for one test. The resolver runs on a helper thread that
// may outlive the test, so it captures nothing by reference.
class FakeResolver {
 public:
  explicit FakeResolver(detail::Resolver resolver) {
    detail::set_resolver_for_testing(std::move(resolver));
  }
  ~FakeResolver() { detail::set_resolver_for_testing(nullptr); }
  FakeResolver(const FakeResolver&) = delete;
  FakeResolver& operator=(const FakeResolver&) = delete;
};

class WebhookDnsTest : public ::testing::Test {
 protected:
  ManualClock clock;
  WebhookOptions options(std::chrono::milliseconds timeout, int attempts = 1) {
    return WebhookOptions{.timeout = timeout, .max_attempts = attempts, .clock = &clock};
  }
};

TEST_F(WebhookDnsTest, AHostNameIsLookedUpAndItsAddressesTriedInTurn) {
  TestHttpServer server;  // 127.0.0.1 only: ::1 refuses (or has no IPv6 at all)
  FakeResolver resolver([](const std::string& host) {
    if (host != "alerts.example.test") throw std::runtime_error("unknown name");
    return std::vector<std::string>{"::1", "127.0.0.1"};
  });
  WebhookDispatcher dispatcher(options(5s));
  const std::string url = "http://alerts.example.test:" + std::to_string(server.port()) + "/hook";
  ASSERT_TRUE(dispatcher.enqueue({.url = url, .body = "{}"}));
  ASSERT_TRUE(dispatcher.flush(10s));
  EXPECT_EQ(dispatcher.delivered(), 1u);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(WebhookDnsTest, LocalhostIsLookedUpByTheSystemResolver) {
  TestHttpServer server;  // 127.0.0.1; localhost may list ::1 first
  WebhookDispatcher dispatcher(options(5s));
  const std::string url = "http://localhost:" + std::to_string(server.port()) + "/hook";
  ASSERT_TRUE(dispatcher.enqueue({.url = url, .body = "{}"}));
  ASSERT_TRUE(dispatcher.flush(10s));
  EXPECT_EQ(dispatcher.delivered(), 1u);
}

TEST_F(WebhookDnsTest, ASlowLookupEndsAtTheDeadline) {
  prodsafe::testing::LogCapture log;
  FakeResolver resolver([](const std::string&) {
    std::this_thread::sleep_for(3s);  // a name server that does not answer
    return std::vector<std::string>{"127.0.0.1"};
  });
  WebhookDispatcher dispatcher(options(300ms));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(dispatcher.enqueue({.url = "http://slow-dns.example.test/hook", .body = "{}"}));
  ASSERT_TRUE(dispatcher.flush(10s));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(dispatcher.failed(), 1u);
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 1500ms) << "the 300 ms deadline, not the 3 s lookup";
  EXPECT_NE(log.text().find("DNS lookup timed out"), std::string::npos) << log.text();
}

TEST_F(WebhookDnsTest, TheDestructorDoesNotWaitForALookup) {
  FakeResolver resolver([](const std::string&) {
    std::this_thread::sleep_for(3s);
    return std::vector<std::string>{"127.0.0.1"};
  });
  std::optional<WebhookDispatcher> dispatcher(std::in_place, WebhookOptions{
                                                                 .timeout = 10s,
                                                                 .drain_timeout = 0ms,
                                                                 .clock = &clock,
                                                             });
  ASSERT_TRUE(dispatcher->enqueue({.url = "http://slow-dns.example.test/hook", .body = "{}"}));
  std::this_thread::sleep_for(100ms);  // the worker is waiting for the lookup
  const auto start = std::chrono::steady_clock::now();
  dispatcher.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST_F(WebhookDnsTest, AnUnresolvableNameFailsWithinTheDeadline) {
  // The real resolver: .invalid never resolves (RFC 6761). Whether the
  // resolver says so at once or not at all, the attempt ends by its deadline.
  WebhookDispatcher dispatcher(options(1s, 2));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(dispatcher.enqueue({.url = "http://prodsafe-test.invalid/hook", .body = "{}"}));
  ASSERT_TRUE(dispatcher.flush(10s));
  EXPECT_EQ(dispatcher.failed(), 1u);
  EXPECT_EQ(dispatcher.retried(), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << "two attempts of at most 1 s";
}

}  // namespace
}  // namespace prodsafe::alerts
