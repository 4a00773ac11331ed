// AlertHooks: order, arguments, containment of throwing hooks, and a webhook
// hook that never blocks fire() while its endpoint hangs.
#include "prodsafe/alerts/alert_hooks.hpp"

#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/alerts/webhook.hpp"
#include "prodsafe/core/error.hpp"
#include "support/log_capture.hpp"
#include "test_http_server.hpp"

namespace prodsafe::alerts {
namespace {

using namespace std::chrono_literals;
using testing::Reply;
using testing::TestHttpServer;

struct Call {
  std::string hook;
  std::string event_type;
  std::string message;
  std::string job_type;
  std::uint64_t failure_count = 0;
};

AlertHook recorder(std::vector<Call>& calls, std::string name) {
  return
      [&calls, name](std::string_view type, std::string_view message, const AlertContext& context) {
        calls.push_back({name, std::string(type), std::string(message), context.job_type,
                         context.failure_count});
      };
}

TEST(AlertHooksTest, CallsHooksOfEveryKindInOrderWithTheFiredArguments) {
  AlertHooks hooks;
  std::vector<Call> calls;
  hooks.add_webhook_hook(recorder(calls, "webhook"));
  hooks.add_log_hook(recorder(calls, "log"));
  hooks.add_metric_hook(recorder(calls, "metric"));
  hooks.add_event_hook(recorder(calls, "event"));
  hooks.add_log_hook(recorder(calls, "log2"));
  ASSERT_EQ(hooks.size(), 5u);

  hooks.fire(kCircuitOpened, "orders opened",
             AlertContext{.job_type = "orders", .failure_count = 7});
  hooks.fire(kCircuitClosed, "orders closed", AlertContext{.job_type = "orders"});

  ASSERT_EQ(calls.size(), 10u);
  const std::vector<std::string> order{"webhook", "log", "metric", "event", "log2"};
  for (std::size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].hook, order[i % 5]);
    EXPECT_EQ(calls[i].job_type, "orders");
  }
  EXPECT_EQ(calls[0].event_type, "circuit_opened");
  EXPECT_EQ(calls[0].message, "orders opened");
  EXPECT_EQ(calls[4].failure_count, 7u);
  EXPECT_EQ(calls[5].event_type, "circuit_closed");
  EXPECT_EQ(calls[9].message, "orders closed");
  EXPECT_EQ(hooks.fired(), 2u);
  EXPECT_EQ(hooks.hook_errors(), 0u);
}

TEST(AlertHooksTest, AThrowingHookIsContainedCountedAndLaterHooksStillRun) {
  prodsafe::testing::LogCapture log;
  AlertHooks hooks;
  std::vector<Call> calls;
  hooks.add_log_hook([](auto, auto, const auto&) { throw std::runtime_error("disk full"); });
  hooks.add_metric_hook([](auto, auto, const auto&) { throw 42; });
  hooks.add_event_hook(recorder(calls, "event"));

  hooks.fire(kCircuitOpened, "first", AlertContext{});
  hooks.fire(kCircuitOpened, "second", AlertContext{});

  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].message, "second");
  EXPECT_EQ(hooks.hook_errors(), 4u);
  EXPECT_EQ(hooks.fired(), 2u);
  const std::string text = log.text();
  EXPECT_NE(text.find("alert hook #0 (log) threw on 'circuit_opened': disk full"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("alert hook #1 (metric) threw"), std::string::npos) << text;
}

TEST(AlertHooksTest, EmptyHooksAndNullSinksAreRefused) {
  AlertHooks hooks;
  EXPECT_THROW(hooks.add_log_hook(nullptr), InvalidArgument);
  EXPECT_THROW(hooks.add_webhook_hook(std::shared_ptr<WebhookSink>{}), InvalidArgument);
  EXPECT_EQ(hooks.size(), 0u);
}

TEST(AlertHooksTest, AWebhookHookNeverBlocksFireWhileTheEndpointHangs) {
  TestHttpServer server([](std::size_t) { return Reply{.status = 200, .hold = true}; });
  auto dispatcher = std::make_shared<WebhookDispatcher>(WebhookOptions{.timeout = 10s});
  auto sink = std::make_shared<JsonWebhook>(server.url("/hook"), dispatcher);
  AlertHooks hooks;
  hooks.add_webhook_hook(sink);
  std::vector<Call> calls;
  hooks.add_event_hook(recorder(calls, "event"));

  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) hooks.fire(kCircuitOpened, "opened", AlertContext{.job_type = "a"});
  const auto fire_took = std::chrono::steady_clock::now() - start;

  // The endpoint holds the first request for up to 10 s; fire() returned long
  // before, having run the later hook each time.
  ASSERT_TRUE(server.wait_for_requests(1));
  EXPECT_EQ(dispatcher->delivered(), 0u);
  EXPECT_EQ(dispatcher->pending(), 3u);
  EXPECT_EQ(calls.size(), 3u);
  EXPECT_LT(fire_took, 1s);

  server.release();
  ASSERT_TRUE(dispatcher->flush(5s));
  EXPECT_EQ(dispatcher->delivered(), 3u);
  EXPECT_EQ(hooks.hook_errors(), 0u);
}

TEST(AlertHooksTest, ThisInstanceIsHostColonPid) {
  const std::string instance = this_instance();
  const std::string suffix = ":" + std::to_string(getpid());
  ASSERT_GT(instance.size(), suffix.size());
  EXPECT_EQ(instance.substr(instance.size() - suffix.size()), suffix);
}

}  // namespace
}  // namespace prodsafe::alerts
