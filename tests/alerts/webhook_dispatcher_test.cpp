// WebhookDispatcher against a real HTTP server on 127.0.0.1: retries, timeouts,
// final answers, the queue bound and shutdown. Retry waits run on a
// ManualClock, so they take no time.
#include "prodsafe/alerts/webhook_dispatcher.hpp"

#include <ctime>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "prodsafe/core/clock.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "support/log_capture.hpp"
#include "test_http_server.hpp"

namespace prodsafe::alerts {
namespace {

using namespace std::chrono_literals;
using testing::Reply;
using testing::TestHttpServer;

class WebhookDispatcherTest : public ::testing::Test {
 protected:
  ManualClock clock;
  WebhookOptions options(std::chrono::milliseconds timeout = 5s) {
    return WebhookOptions{.timeout = timeout, .retry_delay = 200ms, .clock = &clock};
  }
  static WebhookRequest request(const TestHttpServer& server, std::string body = "{}") {
    return WebhookRequest{.url = server.url("/hook"), .body = std::move(body)};
  }
};

TEST_F(WebhookDispatcherTest, RetriesAfterA500AndDelivers) {
  TestHttpServer server([](std::size_t i) { return Reply{.status = i == 0 ? 500 : 200}; });
  WebhookDispatcher dispatcher(options());
  ASSERT_TRUE(dispatcher.enqueue(request(server, R"({"n":1})")));

  ASSERT_TRUE(dispatcher.flush(5s));
  EXPECT_EQ(dispatcher.delivered(), 1u);
  EXPECT_EQ(dispatcher.retried(), 1u);
  EXPECT_EQ(dispatcher.failed(), 0u);
  const auto received = server.requests();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[1].body, R"({"n":1})");
  EXPECT_EQ(clock.slept(), 200ms);
}

TEST_F(WebhookDispatcherTest, GivesUpAfterMaxAttemptsWithDoublingDelays) {
  TestHttpServer server([](std::size_t) { return Reply{.status = 503}; });
  WebhookDispatcher dispatcher(options());
  ASSERT_TRUE(dispatcher.enqueue(request(server)));

  ASSERT_TRUE(dispatcher.flush(5s));
  EXPECT_EQ(dispatcher.delivered(), 0u);
  EXPECT_EQ(dispatcher.failed(), 1u);
  EXPECT_EQ(dispatcher.retried(), 2u);
  EXPECT_EQ(server.requests().size(), 3u);
  EXPECT_EQ(clock.slept(), 600ms) << "200 ms, then 400 ms";
}

TEST_F(WebhookDispatcherTest, RetriesAnEndpointThatAnswersTooLate) {
  // The first request is held past the 500 ms read timeout; the retry is answered.
  TestHttpServer server([](std::size_t i) { return Reply{.status = 200, .hold = i == 0}; });
  WebhookDispatcher dispatcher(options(500ms));
  ASSERT_TRUE(dispatcher.enqueue(request(server)));

  ASSERT_TRUE(dispatcher.flush(5s));
  EXPECT_EQ(dispatcher.delivered(), 1u);
  // One retry, or two when a slow machine (a sanitizer build) lets the first
  // attempt time out before the server even handled it, so that the retry is
  // the request held.
  EXPECT_GE(dispatcher.retried(), 1u);
  EXPECT_LE(dispatcher.retried(), 2u);
  EXPECT_EQ(dispatcher.failed(), 0u);
  EXPECT_GE(server.requests().size(), 2u);
}

TEST_F(WebhookDispatcherTest, FailsWhenEveryAttemptTimesOut) {
  TestHttpServer server([](std::size_t) { return Reply{.status = 200, .hold = true}; });
  WebhookDispatcher dispatcher(options(100ms));
  ASSERT_TRUE(dispatcher.enqueue(request(server)));

  ASSERT_TRUE(dispatcher.flush(5s));
  EXPECT_EQ(dispatcher.delivered(), 0u);
  EXPECT_EQ(dispatcher.failed(), 1u);
  EXPECT_EQ(dispatcher.retried(), 2u);
  // The server handles a request only once it has read it; an attempt that
  // timed out before that never reaches the handler, so count what arrived.
  EXPECT_TRUE(server.wait_for_requests(1));
  EXPECT_LE(server.requests().size(), 3u);
}

TEST_F(WebhookDispatcherTest, A4xxIsFinalAndNotRetried) {
  for (const int status : {400, 403, 404}) {
    TestHttpServer server([status](std::size_t) { return Reply{.status = status}; });
    WebhookDispatcher dispatcher(options());
    ASSERT_TRUE(dispatcher.enqueue(request(server)));
    ASSERT_TRUE(dispatcher.flush(5s));
    EXPECT_EQ(dispatcher.failed(), 1u) << status;
    EXPECT_EQ(dispatcher.retried(), 0u) << status;
    EXPECT_EQ(server.requests().size(), 1u) << status;
  }
}

TEST_F(WebhookDispatcherTest, A429IsRetried) {
  TestHttpServer server([](std::size_t i) { return Reply{.status = i == 0 ? 429 : 202}; });
  WebhookDispatcher dispatcher(options());
  ASSERT_TRUE(dispatcher.enqueue(request(server)));
  ASSERT_TRUE(dispatcher.flush(5s));
  EXPECT_EQ(dispatcher.delivered(), 1u);
  EXPECT_EQ(dispatcher.retried(), 1u);
}

TEST_F(WebhookDispatcherTest, A429WaitsAsLongAsItsRetryAfterSeconds) {
  // Rate limited for 2 s: an attempt sooner is refused again.
  TestHttpServer server([](std::size_t i) {
    if (i == 0) return Reply{.status = 429, .headers = {{"Retry-After", "2"}}};
    return Reply{.status = 200};
  });
  WebhookDispatcher dispatcher(options());
  ASSERT_TRUE(dispatcher.enqueue(request(server)));
  ASSERT_TRUE(dispatcher.flush(5s));
  EXPECT_EQ(dispatcher.delivered(), 1u);
  EXPECT_EQ(dispatcher.retried(), 1u);
  EXPECT_EQ(clock.slept(), 2s) << "Retry-After: 2, not the 200 ms retry delay";
}

// An HTTP-date 3 s after the dispatcher's clock's wall time, IMF-fixdate.
std::string http_date(const ManualClock& clock, std::chrono::seconds later) {
  const std::time_t when = std::chrono::system_clock::to_time_t(clock.system_now() + later);
  std::tm utc{};
  gmtime_r(&when, &utc);
  char text[64];
  std::strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &utc);
  return text;
}

TEST_F(WebhookDispatcherTest, A503WaitsUntilItsRetryAfterDate) {
  const std::string date = http_date(clock, 3s);
  TestHttpServer server([date](std::size_t i) {
    if (i == 0) return Reply{.status = 503, .headers = {{"Retry-After", date}}};
    return Reply{.status = 200};
  });
  WebhookDispatcher dispatcher(options());
  ASSERT_TRUE(dispatcher.enqueue(request(server)));
  ASSERT_TRUE(dispatcher.flush(5s));
  EXPECT_EQ(dispatcher.delivered(), 1u);
  // The date has whole seconds: between 2 and 3 s from now.
  EXPECT_GT(clock.slept(), 2s);
  EXPECT_LE(clock.slept(), 3s);
}

TEST_F(WebhookDispatcherTest, RetryAfterIsCappedAtMaxRetryAfter) {
  TestHttpServer server([](std::size_t) {
    return Reply{.status = 429, .headers = {{"Retry-After", "86400"}}};
  });
  WebhookOptions capped = options();
  capped.max_retry_after = 5s;
  WebhookDispatcher dispatcher(capped);
  ASSERT_TRUE(dispatcher.enqueue(request(server)));
  ASSERT_TRUE(dispatcher.flush(5s));
  EXPECT_EQ(dispatcher.failed(), 1u);
  EXPECT_EQ(server.requests().size(), 3u) << "max_attempts still holds";
  EXPECT_EQ(clock.slept(), 10s) << "5 s, then 5 s: a day capped at max_retry_after";
}

TEST_F(WebhookDispatcherTest, AnUnreadableRetryAfterFallsBackToTheRetryDelay) {
  TestHttpServer server([](std::size_t i) {
    if (i == 0) return Reply{.status = 429, .headers = {{"Retry-After", "soon"}}};
    return Reply{.status = 200};
  });
  WebhookDispatcher dispatcher(options());
  ASSERT_TRUE(dispatcher.enqueue(request(server)));
  ASSERT_TRUE(dispatcher.flush(5s));
  EXPECT_EQ(dispatcher.delivered(), 1u);
  EXPECT_EQ(clock.slept(), 200ms);
}

TEST(WebhookRetryAfterTest, AWaitingEndpointHoldsNeitherTheWorkerNorOtherEndpoints) {
  // The real clock. Slack is rate limited for 1 s; PagerDuty's alert, queued
  // behind Slack's, is delivered meanwhile; Slack's second alert waits behind
  // its first, so Slack still gets them in order.
  TestHttpServer slack([](std::size_t i) {
    if (i == 0) return Reply{.status = 429, .headers = {{"Retry-After", "1"}}};
    return Reply{.status = 200};
  });
  TestHttpServer pagerduty;
  WebhookDispatcher dispatcher(WebhookOptions{.retry_delay = 10ms});
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(dispatcher.enqueue({.url = slack.url("/hook"), .body = "first"}));
  ASSERT_TRUE(dispatcher.enqueue({.url = pagerduty.url("/hook"), .body = "page"}));
  ASSERT_TRUE(dispatcher.enqueue({.url = slack.url("/hook"), .body = "second"}));

  ASSERT_TRUE(pagerduty.wait_for_requests(1, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 800ms);
  EXPECT_EQ(slack.requests().size(), 1u) << "Slack's second alert waits behind its first";

  ASSERT_TRUE(dispatcher.flush(5s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(dispatcher.delivered(), 3u);
  std::vector<std::string> bodies;
  for (const auto& received : slack.requests()) bodies.push_back(received.body);
  EXPECT_EQ(bodies, (std::vector<std::string>{"first", "first", "second"}));
}

TEST(WebhookRetryAfterTest, TheDestructorDoesNotWaitOutARetryAfter) {
  TestHttpServer server([](std::size_t) {
    return Reply{.status = 429, .headers = {{"Retry-After", "30"}}};
  });
  metrics::Registry registry;
  std::optional<WebhookDispatcher> dispatcher(
      std::in_place, WebhookOptions{.drain_timeout = 100ms, .metrics = &registry});
  ASSERT_TRUE(dispatcher->enqueue({.url = server.url("/hook"), .body = "{}"}));
  ASSERT_TRUE(server.wait_for_requests(1));
  const auto start = std::chrono::steady_clock::now();
  dispatcher.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_NE(registry.serialize().find(
                R"(prodsafe_alerts_webhook_requests_total{sink="webhook",outcome="failed"} 1)"),
            std::string::npos)
      << registry.serialize();
}

TEST_F(WebhookDispatcherTest, WhatIsLostIsCountedInMetrics) {
  metrics::Registry registry;
  TestHttpServer server([](std::size_t i) {
    return Reply{.status = i == 0 ? 429 : (i == 1 ? 200 : 400), .hold = i == 1};
  });
  WebhookOptions limited = options();
  limited.queue_capacity = 1;
  limited.metrics = &registry;
  WebhookDispatcher dispatcher(limited);
  // The first is refused (429), then held: the second waits in the queue and
  // the next two are dropped.
  ASSERT_TRUE(dispatcher.enqueue({.url = server.url("/hook"), .body = "0", .sink = "json"}));
  ASSERT_TRUE(server.wait_for_requests(2));
  ASSERT_TRUE(dispatcher.enqueue({.url = server.url("/hook"), .body = "1", .sink = "json"}));
  EXPECT_FALSE(dispatcher.enqueue({.url = server.url("/hook"), .body = "2", .sink = "json"}));
  EXPECT_FALSE(dispatcher.enqueue({.url = server.url("/hook"), .body = "3", .sink = "slack"}));
  server.release();
  ASSERT_TRUE(dispatcher.flush(5s));

  const std::string page = registry.serialize();
  for (const std::string series : {
           R"(prodsafe_alerts_webhook_requests_total{sink="json",outcome="delivered"} 1)",
           R"(prodsafe_alerts_webhook_requests_total{sink="json",outcome="failed"} 1)",
           R"(prodsafe_alerts_webhook_requests_total{sink="json",outcome="dropped"} 1)",
           R"(prodsafe_alerts_webhook_requests_total{sink="slack",outcome="dropped"} 1)",
           R"(prodsafe_alerts_webhook_retries_total{sink="json"} 1)",
       }) {
    EXPECT_NE(page.find(series), std::string::npos) << series << "\n" << page;
  }
  EXPECT_EQ(dispatcher.dropped(), 2u);
  EXPECT_EQ(dispatcher.failed(), 1u);
}

TEST_F(WebhookDispatcherTest, AnUnreachableEndpointIsRetriedThenFailed) {
  std::string url;
  {
    TestHttpServer closed;  // a port that was just free: nothing listens there now
    url = closed.url("/hook");
  }
  WebhookDispatcher dispatcher(options());
  ASSERT_TRUE(dispatcher.enqueue({.url = url, .body = "{}"}));
  ASSERT_TRUE(dispatcher.flush(5s));
  EXPECT_EQ(dispatcher.failed(), 1u);
  EXPECT_EQ(dispatcher.retried(), 2u);
}

TEST_F(WebhookDispatcherTest, AFullQueueDropsAndCountsWithoutBlocking) {
  prodsafe::testing::LogCapture log;
  TestHttpServer server([](std::size_t) { return Reply{.status = 200, .hold = true}; });
  WebhookOptions limited = options();
  limited.queue_capacity = 2;
  WebhookDispatcher dispatcher(limited);

  // The first request is taken by the worker and held by the server...
  ASSERT_TRUE(dispatcher.enqueue(request(server, "0")));
  ASSERT_TRUE(server.wait_for_requests(1));
  // ...so of the next nine, two fit in the queue and seven are dropped.
  int queued = 0;
  for (int i = 1; i < 10; ++i) queued += dispatcher.enqueue(request(server, std::to_string(i)));
  EXPECT_EQ(queued, 2);
  EXPECT_EQ(dispatcher.dropped(), 7u);
  EXPECT_EQ(dispatcher.pending(), 3u);

  server.release();
  ASSERT_TRUE(dispatcher.flush(5s));
  EXPECT_EQ(dispatcher.delivered(), 3u);
  std::vector<std::string> bodies;
  for (const auto& received : server.requests()) bodies.push_back(received.body);
  EXPECT_EQ(bodies, (std::vector<std::string>{"0", "1", "2"}));
  // Drops 1, 2 and 4 are logged, not every one.
  EXPECT_NE(log.text().find("dropped 4 alert(s) so far"), std::string::npos) << log.text();
  EXPECT_EQ(log.text().find("dropped 3 alert(s)"), std::string::npos) << log.text();
}

TEST_F(WebhookDispatcherTest, TheDestructorDeliversWhatIsQueued) {
  TestHttpServer server;
  {
    WebhookDispatcher dispatcher(options());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(dispatcher.enqueue(request(server)));
  }
  EXPECT_EQ(server.requests().size(), 5u);
}

TEST_F(WebhookDispatcherTest, TheDestructorWaitsOnlyDrainTimeoutForAHungEndpoint) {
  prodsafe::testing::LogCapture log;
  TestHttpServer server([](std::size_t) { return Reply{.status = 200, .hold = true}; });
  WebhookOptions hung = options(10s);
  hung.drain_timeout = 100ms;
  std::optional<WebhookDispatcher> dispatcher(std::in_place, hung);
  ASSERT_TRUE(dispatcher->enqueue(request(server)));
  ASSERT_TRUE(dispatcher->enqueue(request(server)));
  ASSERT_TRUE(server.wait_for_requests(1));

  const auto start = std::chrono::steady_clock::now();
  dispatcher.reset();  // waits 100 ms, cancels the held request, drops the other
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 100ms);
  EXPECT_LT(took, 3s) << "bounded by drain_timeout, not by the 10 s timeout";
  EXPECT_NE(log.text().find("shut down with 1 undelivered alert(s)"), std::string::npos)
      << log.text();
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(WebhookDispatcherTest, AMalformedUrlFailsWithoutAnAttempt) {
  WebhookDispatcher dispatcher(options());
  ASSERT_TRUE(dispatcher.enqueue({.url = "ftp://example.com/x", .body = "{}"}));
  ASSERT_TRUE(dispatcher.flush(5s));
  EXPECT_EQ(dispatcher.failed(), 1u);
  EXPECT_EQ(dispatcher.retried(), 0u);
}

TEST_F(WebhookDispatcherTest, OptionsOutOfRangeAreRefused) {
  EXPECT_THROW(WebhookDispatcher(WebhookOptions{.queue_capacity = 0}), InvalidArgument);
  EXPECT_THROW(WebhookDispatcher(WebhookOptions{.timeout = 0ms}), InvalidArgument);
  EXPECT_THROW(WebhookDispatcher(WebhookOptions{.max_attempts = 0}), InvalidArgument);
  EXPECT_THROW(WebhookDispatcher(WebhookOptions{.retry_delay = -1ms}), InvalidArgument);
  EXPECT_THROW(WebhookDispatcher(WebhookOptions{.max_retry_after = -1ms}), InvalidArgument);
}

}  // namespace
}  // namespace prodsafe::alerts
