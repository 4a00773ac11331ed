// What Slack, PagerDuty and a generic JSON endpoint receive, as parsed by a
// real HTTP server on 127.0.0.1.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "prodsafe/alerts/alert_hooks.hpp"
#include "prodsafe/alerts/webhook.hpp"
#include "prodsafe/core/clock.hpp"
#include "test_http_server.hpp"

namespace prodsafe::alerts {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::TestHttpServer;

// 2026-01-01T00:00:00.250Z
const std::chrono::system_clock::time_point kWhen =
    std::chrono::system_clock::time_point(std::chrono::seconds(1767225600)) + 250ms;

AlertContext opened_context(std::string job_type = "orders") {
  return AlertContext{.job_type = std::move(job_type),
                      .state = "OPEN",
                      .previous_state = "CLOSED",
                      .failure_count = 12,
                      .threshold = 10,
                      .window = 60s,
                      .timestamp = kWhen,
                      .instance = "worker-3:4121",
                      .extra = {{"region", "eu-west-1"}}};
}

class WebhookPayloadTest : public ::testing::Test {
 protected:
  TestHttpServer server;
  std::shared_ptr<WebhookDispatcher> dispatcher = std::make_shared<WebhookDispatcher>();
  AlertHooks hooks;

  std::vector<json> bodies(std::size_t expected) {
    EXPECT_TRUE(dispatcher->flush(5s));
    EXPECT_EQ(dispatcher->delivered(), expected);
    std::vector<json> parsed;
    for (const auto& request : server.requests()) {
      EXPECT_EQ(request.content_type, "application/json");
      EXPECT_EQ(request.user_agent, "prodsafe");
      parsed.push_back(json::parse(request.body));
    }
    EXPECT_EQ(parsed.size(), expected);
    return parsed;
  }
};

TEST_F(WebhookPayloadTest, SlackGetsAReadableSummaryAndTheFields) {
  hooks.add_webhook_hook(
      std::make_shared<SlackWebhook>(server.url("/services/T000/B000/SECRET"), dispatcher));
  AlertContext context = opened_context();
  context.extra["note"] = "<b> & co";
  hooks.fire(kCircuitOpened, "circuit for orders opened", context);

  const auto received = bodies(1);
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(server.requests()[0].path, "/services/T000/B000/SECRET");
  ASSERT_TRUE(received[0].contains("text"));
  const std::string text = received[0]["text"];
  const std::string first_line = text.substr(0, text.find('\n'));
  EXPECT_EQ(first_line,
            ":rotating_light: *[prodsafe] circuit_opened* `orders`: circuit for orders opened");
  for (const char* expected :
       {"*state*: CLOSED → OPEN", "*failures*: 12 (threshold 10, window 60s)",
        "*instance*: worker-3:4121", "*time*: 2026-01-01T00:00:00.250Z", "*region*: eu-west-1",
        "*note*: &lt;b&gt; &amp; co"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << " in\n" << text;
  }
}

TEST_F(WebhookPayloadTest, PagerDutyTriggersOnOpenResolvesOnCloseAndIgnoresHalfOpen) {
  const std::string key = "R0UT1NGKEY0123456789abcdefABCDEF";
  hooks.add_webhook_hook(
      std::make_shared<PagerDutyEvents>(key, server.url("/v2/enqueue"), dispatcher));

  hooks.fire(kCircuitOpened, "orders opened", opened_context("orders"));
  hooks.fire(kCircuitHalfOpen, "orders probing", opened_context("orders"));
  hooks.fire(kCircuitOpened, "payments opened", opened_context("payments"));
  hooks.fire(kCircuitClosed, "orders closed", opened_context("orders"));
  hooks.fire(kCircuitStoreUnavailable, "redis down", opened_context("orders"));

  const auto events = bodies(4);
  ASSERT_EQ(events.size(), 4u);
  for (const auto& event : events) EXPECT_EQ(event["routing_key"], key);
  EXPECT_EQ(server.requests()[0].path, "/v2/enqueue");

  const json& open = events[0];
  EXPECT_EQ(open["event_action"], "trigger");
  EXPECT_EQ(open["dedup_key"], "prodsafe-circuit-orders");
  EXPECT_EQ(open["payload"]["summary"], "[prodsafe] circuit_opened orders: orders opened");
  EXPECT_EQ(open["payload"]["source"], "worker-3:4121");
  EXPECT_EQ(open["payload"]["severity"], "critical");
  EXPECT_EQ(open["payload"]["timestamp"], "2026-01-01T00:00:00.250Z");
  const json& details = open["payload"]["custom_details"];
  EXPECT_EQ(details["job_type"], "orders");
  EXPECT_EQ(details["state"], "OPEN");
  EXPECT_EQ(details["previous_state"], "CLOSED");
  EXPECT_EQ(details["failure_count"], 12);
  EXPECT_EQ(details["threshold"], 10);
  EXPECT_EQ(details["window_ms"], 60000);
  EXPECT_EQ(details["instance"], "worker-3:4121");
  EXPECT_EQ(details["extra"]["region"], "eu-west-1");
  EXPECT_EQ(details["event_type"], "circuit_opened");

  EXPECT_EQ(events[1]["event_action"], "trigger");
  EXPECT_EQ(events[1]["dedup_key"], "prodsafe-circuit-payments");

  EXPECT_EQ(events[2]["event_action"], "resolve");
  EXPECT_EQ(events[2]["dedup_key"], open["dedup_key"]) << "a close resolves its open";

  EXPECT_EQ(events[3]["event_action"], "trigger");
  EXPECT_EQ(events[3]["dedup_key"], "prodsafe-circuit-store-orders")
      << "an outage is its own incident: its end must not resolve an open circuit's";
  EXPECT_EQ(events[3]["payload"]["severity"], "error");
}

// The breaker fires circuit_store_available when the store answers again
// after an outage; the outage's incident must then be resolved, not left open.
TEST_F(WebhookPayloadTest, PagerDutyResolvesAStoreOutageWhenTheStoreIsBack) {
  hooks.add_webhook_hook(std::make_shared<PagerDutyEvents>("R0UT1NGKEY0123456789abcdefABCDEF",
                                                           server.url("/v2/enqueue"), dispatcher));
  hooks.fire(kCircuitStoreUnavailable, "redis down", opened_context("orders"));
  hooks.fire(kCircuitStoreAvailable, "redis back", opened_context("orders"));
  const auto events = bodies(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["event_action"], "trigger");
  EXPECT_EQ(events[1]["event_action"], "resolve");
  EXPECT_EQ(events[1]["dedup_key"], events[0]["dedup_key"]);
}

TEST_F(WebhookPayloadTest, GenericJsonCarriesEveryContextField) {
  hooks.add_webhook_hook(
      std::make_shared<JsonWebhook>(server.url("/alerts?token=abc"), dispatcher));
  hooks.fire(kCircuitHalfOpen, "probing orders", opened_context());

  const auto received = bodies(1);
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(server.requests()[0].path, "/alerts");
  const json expected = {{"event_type", "circuit_half_open"},
                         {"message", "probing orders"},
                         {"context",
                          {{"job_type", "orders"},
                           {"state", "OPEN"},
                           {"previous_state", "CLOSED"},
                           {"failure_count", 12},
                           {"threshold", 10},
                           {"window_ms", 60000},
                           {"timestamp", "2026-01-01T00:00:00.250Z"},
                           {"instance", "worker-3:4121"},
                           {"extra", {{"region", "eu-west-1"}}}}}};
  EXPECT_EQ(received[0], expected) << received[0].dump(2);
}

TEST(WebhookSinkTest, AMissingTimestampAndInstanceAreFilledIn) {
  TestHttpServer server;
  ManualClock clock;  // 2026-01-01T00:00:00Z
  auto dispatcher = std::make_shared<WebhookDispatcher>(WebhookOptions{.clock = &clock});
  JsonWebhook sink(server.url("/x"), dispatcher);

  EXPECT_TRUE(sink.send(kCircuitOpened, "opened", AlertContext{.job_type = "orders"}));
  ASSERT_TRUE(dispatcher->flush(5s));
  ASSERT_EQ(server.requests().size(), 1u);
  const json body = json::parse(server.requests()[0].body);
  EXPECT_EQ(body["context"]["timestamp"], "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(body["context"]["instance"], this_instance());
}

TEST(WebhookSinkTest, AnIgnoredEventIsNotSent) {
  PagerDutyEvents sink("key", "http://127.0.0.1:9/never");
  EXPECT_FALSE(sink.format(kCircuitHalfOpen, "probing", AlertContext{}).has_value());
  EXPECT_FALSE(sink.format("retry_spike", "spike", AlertContext{}).has_value());
  EXPECT_FALSE(sink.send(kCircuitHalfOpen, "probing", AlertContext{}));
  EXPECT_EQ(sink.dispatcher().pending(), 0u);
}

}  // namespace
}  // namespace prodsafe::alerts
