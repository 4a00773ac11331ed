// Webhook URLs: malformed ones refused with a clear message, and secrets (a
// Slack path, a query token, a PagerDuty routing key) kept out of every error
// and log line.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/alerts/webhook.hpp"
#include "prodsafe/core/clock.hpp"
#include "prodsafe/core/error.hpp"
#include "support/log_capture.hpp"
#include "test_http_server.hpp"

namespace prodsafe::alerts {
namespace {

using namespace std::chrono_literals;
using testing::Reply;
using testing::TestHttpServer;

std::string refusal(const std::string& url) {
  try {
    JsonWebhook sink(url);
  } catch (const InvalidArgument& error) {
    return error.what();
  }
  return "(accepted)";
}

TEST(WebhookUrlTest, MalformedUrlsAreRefusedNamingWhatIsWrong) {
  const struct {
    std::string url;
    std::string expected;
  } cases[] = {
      {"", "webhook URL is empty"},
      {"hooks.slack.com/services/T0/B0/SECRET",
       "webhook URL 'hooks.slack.com/***' must start with http:// or https://"},
      {"ftp://example.com/SECRET",
       "webhook URL 'ftp://example.com/***' has the scheme 'ftp'; only http:// and https:// are "
       "supported"},
      {"https:///services/SECRET", "webhook URL 'https:///***' has no host"},
      {"https://:8080/SECRET", "has no host"},
      {"https://example.com:abc/SECRET", "has a bad port 'abc' (want 1-65535)"},
      {"https://example.com:70000/SECRET", "has a bad port '70000' (want 1-65535)"},
      {"https://example.com:0/SECRET", "has a bad port '0'"},
      {"https://example.com:/SECRET", "has a bad port ''"},
      {"https://user:SECRET@example.com/x",
       "webhook URL 'https://example.com/***' carries credentials"},
      {"https://exa mple.com/SECRET", "contains whitespace or a control character"},
      {"https://exa$mple.com/SECRET", "has a malformed host 'exa$mple.com'"},
      {"https://[::1/SECRET", "IPv6 host without its closing ']'"},
  };
  for (const auto& c : cases) {
    const std::string message = refusal(c.url);
    EXPECT_NE(message.find(c.expected), std::string::npos) << c.url << " -> " << message;
    EXPECT_EQ(message.find("SECRET"), std::string::npos) << c.url << " -> " << message;
  }
}

TEST(WebhookUrlTest, WellFormedUrlsAreAccepted) {
  for (const char* url : {"https://hooks.slack.com/services/T0/B0/X", "http://127.0.0.1:8080",
                          "HTTPS://events.pagerduty.com/v2/enqueue", "http://[::1]:9000/x?y=1",
                          "http://host_name.internal:65535/a#frag"}) {
    EXPECT_NO_THROW(validate_webhook_url(url)) << url;
  }
}

TEST(WebhookUrlTest, RedactionKeepsSchemeHostAndPortOnly) {
  EXPECT_EQ(redact_webhook_url("https://hooks.slack.com/services/T0/B0/SECRET"),
            "https://hooks.slack.com/***");
  EXPECT_EQ(redact_webhook_url("http://127.0.0.1:8080/x?token=SECRET"),
            "http://127.0.0.1:8080/***");
  EXPECT_EQ(redact_webhook_url("http://127.0.0.1:8080?token=SECRET"), "http://127.0.0.1:8080/***");
  EXPECT_EQ(redact_webhook_url("https://user:SECRET@example.com/x"), "https://example.com/***");
  EXPECT_EQ(redact_webhook_url("https://example.com"), "https://example.com");
  EXPECT_EQ(redact_webhook_url("example.com/SECRET"), "example.com/***");
  EXPECT_EQ(redact_webhook_url(""), "");
}

TEST(WebhookUrlTest, PagerDutyRoutingKeysAreCheckedButNeverQuoted) {
  try {
    PagerDutyEvents sink("");
    FAIL() << "accepted an empty key";
  } catch (const InvalidArgument& error) {
    EXPECT_STREQ(error.what(), "PagerDuty routing key is empty");
  }
  try {
    PagerDutyEvents sink("SECRET KEY");
    FAIL() << "accepted a key with a space";
  } catch (const InvalidArgument& error) {
    EXPECT_EQ(std::string(error.what()).find("SECRET"), std::string::npos) << error.what();
  }
  try {
    PagerDutyEvents sink("SECRETKEY", "https://events.pagerduty.com:99999/v2/enqueue");
    FAIL() << "accepted a bad port";
  } catch (const InvalidArgument& error) {
    EXPECT_EQ(std::string(error.what()).find("SECRET"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("bad port"), std::string::npos) << error.what();
  }
}

TEST(WebhookUrlTest, NoSecretReachesAnyLogLine) {
  prodsafe::testing::LogCapture log;
  // PagerDuty: 503 twice. Slack: 404, then 404 held until released, then 404.
  TestHttpServer server([](std::size_t i) {
    return i < 2 ? Reply{.status = 503} : Reply{.status = 404, .hold = i == 3};
  });
  ManualClock clock;
  auto dispatcher = std::make_shared<WebhookDispatcher>(
      WebhookOptions{.queue_capacity = 1, .max_attempts = 2, .clock = &clock});
  const std::string routing_key = "ROUTINGKEYSECRET0123456789abcdef";
  PagerDutyEvents pagerduty(routing_key, server.url("/v2/enqueue/SECRET"), dispatcher);
  SlackWebhook slack(server.url("/services/T0/B0/SECRET?token=SECRET"), dispatcher);
  const AlertContext context{.job_type = "orders", .instance = "w:1"};

  EXPECT_TRUE(pagerduty.send(kCircuitOpened, "opened", context));
  ASSERT_TRUE(dispatcher->flush(5s));
  EXPECT_TRUE(slack.send(kCircuitOpened, "opened", context));
  ASSERT_TRUE(dispatcher->flush(5s));
  EXPECT_TRUE(slack.send(kCircuitOpened, "held", context));
  ASSERT_TRUE(server.wait_for_requests(4));
  EXPECT_TRUE(slack.send(kCircuitOpened, "queued", context));
  EXPECT_FALSE(slack.send(kCircuitOpened, "dropped", context));
  server.release();
  ASSERT_TRUE(dispatcher->flush(5s));
  EXPECT_EQ(dispatcher->failed(), 4u);
  EXPECT_EQ(dispatcher->dropped(), 1u);
  ASSERT_EQ(server.requests().size(), 5u);
  EXPECT_NE(server.requests()[0].body.find(routing_key), std::string::npos)
      << "the key is in the request, as PagerDuty needs";

  const std::string text = log.text();
  const std::string redacted = "http://127.0.0.1:" + std::to_string(server.port()) + "/***";
  EXPECT_NE(text.find("webhook pagerduty to " + redacted + " failed after 2 attempt(s): HTTP 503"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("webhook slack to " + redacted + " failed after 1 attempt(s): HTTP 404"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dropped 1 alert(s) so far, the latest for slack to " + redacted),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("SECRET"), std::string::npos) << text;
  EXPECT_EQ(text.find("services"), std::string::npos) << text;
}

TEST(WebhookUrlTest, ARefusedEventIsLoggedWithTheAnswerRedactedEscapedAndBounded) {
  prodsafe::testing::LogCapture log;
  const std::string routing_key = "R0UTINGKEYSECRET0123456789abcdef";
  // PagerDuty's refusal, echoing the key; then a forged log line, an escape
  // sequence, bytes that are not UTF-8 and far more than a log line should hold.
  const std::string refusal =
      R"({"status":"invalid event","message":"Event object is invalid","errors":["routing_key )" +
      routing_key + R"( is not enabled"]})" + "\n[error] forged line \x1b[31m \xff\xfe é " +
      std::string(5000, 'z') + routing_key;
  TestHttpServer server([&](std::size_t i) {
    if (i == 0) return Reply{.status = 400, .body = refusal};
    return Reply{.status = 403, .body = "invalid_token: TOKENSECRET42 for T0/B0"};
  });
  ManualClock clock;
  auto dispatcher = std::make_shared<WebhookDispatcher>(WebhookOptions{.clock = &clock});
  PagerDutyEvents pagerduty(routing_key, server.url("/v2/enqueue"), dispatcher);
  SlackWebhook slack(server.url("/services/T0/B0/TOKENSECRET42"), dispatcher);
  const AlertContext context{.job_type = "orders", .instance = "w:1"};

  EXPECT_TRUE(pagerduty.send(kCircuitOpened, "opened", context));
  ASSERT_TRUE(dispatcher->flush(5s));
  EXPECT_TRUE(slack.send(kCircuitOpened, "opened", context));
  ASSERT_TRUE(dispatcher->flush(5s));
  EXPECT_EQ(dispatcher->failed(), 2u);

  const std::vector<std::string> lines = log.lines();
  std::string pagerduty_line;
  std::string slack_line;
  for (const auto& line : lines) {
    if (line.find("webhook pagerduty") != std::string::npos) pagerduty_line = line;
    if (line.find("webhook slack") != std::string::npos) slack_line = line;
  }
  EXPECT_NE(pagerduty_line.find("HTTP 400"), std::string::npos) << pagerduty_line;
  EXPECT_NE(pagerduty_line.find(R"("message":"Event object is invalid")"), std::string::npos)
      << pagerduty_line;
  EXPECT_NE(pagerduty_line.find("routing_key *** is not enabled"), std::string::npos)
      << pagerduty_line;
  EXPECT_NE(pagerduty_line.find(R"(\n[error] forged line \x1b[31m \xff\xfe é z)"),
            std::string::npos)
      << pagerduty_line;
  EXPECT_LT(pagerduty_line.size(), 1400u) << "about 1 KiB of the answer, not 5 KiB";
  EXPECT_NE(slack_line.find("HTTP 403"), std::string::npos) << slack_line;
  EXPECT_NE(slack_line.find("invalid_token: *** for T0/B0"), std::string::npos) << slack_line;
  for (const auto& line : lines) {
    EXPECT_EQ(line.find("SECRET"), std::string::npos) << line;
    EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
  }
  for (const auto& line : lines) {
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per message: " << line;
  }
}

}  // namespace
}  // namespace prodsafe::alerts
