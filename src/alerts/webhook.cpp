#include "prodsafe/alerts/webhook.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "prodsafe/core/clock.hpp"
#include "prodsafe/core/error.hpp"

namespace prodsafe::alerts {
namespace {

using Json = nlohmann::json;

// Invalid UTF-8 (a job type read from somewhere odd) is replaced, not thrown on.
std::string dump(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// 2026-01-01T00:00:00.250Z
std::string iso8601_utc(std::chrono::system_clock::time_point time) {
  using namespace std::chrono;
  const auto since_epoch = duration_cast<milliseconds>(time.time_since_epoch());
  auto seconds = duration_cast<std::chrono::seconds>(since_epoch);
  auto millis = since_epoch - seconds;
  if (millis.count() < 0) {  // before 1970: borrow a second
    seconds -= std::chrono::seconds(1);
    millis += std::chrono::seconds(1);
  }
  const std::time_t whole = static_cast<std::time_t>(seconds.count());
  std::tm utc{};
  gmtime_r(&whole, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     millis.count());
}

// "60s" for whole seconds, else "1500ms".
std::string readable(std::chrono::milliseconds window) {
  if (window.count() % 1000 == 0) return fmt::format("{}s", window.count() / 1000);
  return fmt::format("{}ms", window.count());
}

Json context_json(const AlertContext& context) {
  Json extra = Json::object();
  for (const auto& [key, value] : context.extra) extra[key] = value;
  return Json{{"job_type", context.job_type},
              {"state", context.state},
              {"previous_state", context.previous_state},
              {"failure_count", context.failure_count},
              {"threshold", context.threshold},
              {"window_ms", context.window.count()},
              {"timestamp", iso8601_utc(context.timestamp)},
              {"instance", context.instance},
              {"extra", std::move(extra)}};
}

// Slack's mrkdwn reads &, < and > as control characters.
std::string slack_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string_view slack_emoji(std::string_view event_type) {
  if (event_type == kCircuitOpened) return ":rotating_light:";
  if (event_type == kCircuitStoreUnavailable) return ":warning:";
  if (event_type == kCircuitStoreAvailable) return ":large_green_circle:";
  if (event_type == kCircuitHalfOpen) return ":large_yellow_circle:";
  if (event_type == kCircuitClosed) return ":white_check_mark:";
  return ":bell:";
}

// PagerDuty refuses summaries over 1024 characters.
std::string truncate_summary(std::string summary) {
  constexpr std::size_t kMax = 1024;
  if (summary.size() > kMax) summary = summary.substr(0, kMax - 3) + "...";
  return summary;
}

}  // namespace

WebhookSink::WebhookSink(std::string url, std::shared_ptr<WebhookDispatcher> dispatcher)
    : url_(std::move(url)), dispatcher_(std::move(dispatcher)) {
  validate_webhook_url(url_);
  if (!dispatcher_) dispatcher_ = std::make_shared<WebhookDispatcher>();
}

bool WebhookSink::send(std::string_view event_type, std::string_view message,
                       const AlertContext& context) const {
  std::optional<WebhookRequest> request;
  if (context.timestamp == std::chrono::system_clock::time_point{} || context.instance.empty()) {
    AlertContext completed = context;
    if (completed.timestamp == std::chrono::system_clock::time_point{}) {
      completed.timestamp = dispatcher_->clock().system_now();
    }
    if (completed.instance.empty()) completed.instance = this_instance();
    request = format(event_type, message, completed);
  } else {
    request = format(event_type, message, context);
  }
  return request && dispatcher_->enqueue(std::move(*request));
}

SlackWebhook::SlackWebhook(std::string url, std::shared_ptr<WebhookDispatcher> dispatcher)
    : WebhookSink(std::move(url), std::move(dispatcher)) {}

std::optional<WebhookRequest> SlackWebhook::format(std::string_view event_type,
                                                   std::string_view message,
                                                   const AlertContext& context) const {
  std::string text =
      fmt::format("{} *[prodsafe] {}*", slack_emoji(event_type), slack_escape(event_type));
  if (!context.job_type.empty()) text += fmt::format(" `{}`", slack_escape(context.job_type));
  text += fmt::format(": {}", slack_escape(message));
  const auto field = [&text](std::string_view name, const std::string& value) {
    if (!value.empty()) text += fmt::format("\n• *{}*: {}", name, slack_escape(value));
  };
  if (!context.previous_state.empty() && !context.state.empty()) {
    field("state", context.previous_state + " → " + context.state);
  } else {
    field("state", context.state);
  }
  if (context.failure_count != 0 || context.threshold != 0) {
    std::string failures =
        fmt::format("{} (threshold {}", context.failure_count, context.threshold);
    if (context.window.count() != 0) failures += ", window " + readable(context.window);
    field("failures", failures + ")");
  }
  field("instance", context.instance);
  field("time", iso8601_utc(context.timestamp));
  for (const auto& [key, value] : context.extra) field(key, value);
  return WebhookRequest{.url = url(), .body = dump(Json{{"text", text}}), .sink = "slack"};
}

PagerDutyEvents::PagerDutyEvents(std::string routing_key, std::string url,
                                 std::shared_ptr<WebhookDispatcher> dispatcher)
    : WebhookSink(std::move(url), std::move(dispatcher)), routing_key_(std::move(routing_key)) {
  if (routing_key_.empty()) throw InvalidArgument("PagerDuty routing key is empty");
  if (std::any_of(routing_key_.begin(), routing_key_.end(),
                  [](unsigned char c) { return c <= ' ' || c == 0x7f; })) {
    throw InvalidArgument(
        "PagerDuty routing key contains whitespace or a control character (key not shown)");
  }
}

std::optional<WebhookRequest> PagerDutyEvents::format(std::string_view event_type,
                                                      std::string_view message,
                                                      const AlertContext& context) const {
  std::string action;
  std::string severity;
  // A store outage is its own incident: its end must not resolve an open
  // circuit's, nor a close the outage's.
  std::string dedup_key = "prodsafe-circuit-" + context.job_type;
  if (event_type == kCircuitOpened) {
    action = "trigger";
    severity = "critical";
  } else if (event_type == kCircuitStoreUnavailable) {
    action = "trigger";
    severity = "error";
    dedup_key = "prodsafe-circuit-store-" + context.job_type;
  } else if (event_type == kCircuitClosed) {
    action = "resolve";
  } else if (event_type == kCircuitStoreAvailable) {
    action = "resolve";
    dedup_key = "prodsafe-circuit-store-" + context.job_type;
  } else {
    return std::nullopt;
  }
  Json event{
      {"routing_key", routing_key_}, {"event_action", action}, {"dedup_key", std::move(dedup_key)}};
  if (action == "trigger") {
    Json details = context_json(context);
    details["event_type"] = event_type;
    details["message"] = message;
    std::string summary =
        context.job_type.empty()
            ? fmt::format("[prodsafe] {}: {}", event_type, message)
            : fmt::format("[prodsafe] {} {}: {}", event_type, context.job_type, message);
    event["payload"] = Json{{"summary", truncate_summary(std::move(summary))},
                            {"source", context.instance},
                            {"severity", severity},
                            {"timestamp", iso8601_utc(context.timestamp)},
                            {"component", context.job_type},
                            {"group", "prodsafe"},
                            {"class", event_type},
                            {"custom_details", std::move(details)}};
  }
  return WebhookRequest{
      .url = url(), .body = dump(event), .sink = "pagerduty", .secrets = {routing_key_}};
}

JsonWebhook::JsonWebhook(std::string url, std::shared_ptr<WebhookDispatcher> dispatcher)
    : WebhookSink(std::move(url), std::move(dispatcher)) {}

std::optional<WebhookRequest> JsonWebhook::format(std::string_view event_type,
                                                  std::string_view message,
                                                  const AlertContext& context) const {
  const Json body{
      {"event_type", event_type}, {"message", message}, {"context", context_json(context)}};
  return WebhookRequest{.url = url(), .body = dump(body), .sink = "json"};
}

}  // namespace prodsafe::alerts
