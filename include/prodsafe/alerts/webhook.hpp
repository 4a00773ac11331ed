// Webhook sinks: turn an alert into an HTTP POST for Slack, PagerDuty or any
// endpoint that takes JSON, delivered by a WebhookDispatcher.
//
//   auto slack = std::make_shared<SlackWebhook>("https://hooks.slack.com/services/T0/B0/XXXX");
//   hooks.add_webhook_hook(slack);
//
//   // Several sinks may share one dispatcher (one queue, one thread):
//   auto dispatcher = std::make_shared<WebhookDispatcher>();
//   hooks.add_webhook_hook(std::make_shared<SlackWebhook>(slack_url, dispatcher));
//   hooks.add_webhook_hook(
//       std::make_shared<PagerDutyEvents>(key, std::string(kPagerDutyEventsUrl), dispatcher));
//
// Each sink is given a dispatcher or, given null, creates its own with default
// WebhookOptions. The dispatcher lives as long as the sinks that hold it.
//
// Webhook URLs carry secrets (Slack's is its path), so a sink's URL reaches
// logs and error messages only through redact_webhook_url(); a PagerDuty
// routing key never does.
//
// Thread safety: sinks are immutable after construction; format() and send()
// are safe to call from several threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "prodsafe/alerts/alert_hooks.hpp"
#include "prodsafe/alerts/webhook_dispatcher.hpp"

namespace prodsafe::alerts {

// Throws InvalidArgument naming what is wrong with `url`: a scheme other than
// http:// or https://, no host, a port outside 1-65535, credentials
// (user:password@), whitespace or control characters. The message quotes the
// URL redacted.
void validate_webhook_url(std::string_view url);

// `url` as scheme://host[:port] with any path and query replaced by "/***"
// and any credentials removed, e.g. "https://hooks.slack.com/***". Safe for
// logs; works on strings that do not parse.
[[nodiscard]] std::string redact_webhook_url(std::string_view url);

class WebhookSink {
 public:
  virtual ~WebhookSink() = default;
  WebhookSink(const WebhookSink&) = delete;
  WebhookSink& operator=(const WebhookSink&) = delete;

  // The POST for this alert, or nullopt when this sink ignores the event.
  [[nodiscard]] virtual std::optional<WebhookRequest> format(std::string_view event_type,
                                                             std::string_view message,
                                                             const AlertContext& context) const = 0;

  // Formats the alert and enqueues it; never blocks. An empty
  // context.timestamp is set to the dispatcher's clock's wall time, an empty
  // context.instance to this_instance(). Returns false when the event is
  // ignored or the request dropped.
  bool send(std::string_view event_type, std::string_view message,
            const AlertContext& context) const;

  // The URL requests go to, redacted (redact_webhook_url).
  [[nodiscard]] std::string redacted_url() const { return redact_webhook_url(url_); }
  [[nodiscard]] WebhookDispatcher& dispatcher() const noexcept { return *dispatcher_; }

 protected:
  // Validates `url` (validate_webhook_url); a null `dispatcher` is replaced
  // by a new one with default options.
  WebhookSink(std::string url, std::shared_ptr<WebhookDispatcher> dispatcher);
  [[nodiscard]] const std::string& url() const noexcept { return url_; }

 private:
  std::string url_;
  std::shared_ptr<WebhookDispatcher> dispatcher_;
};

// A Slack incoming webhook: {"text": "..."} with a one-line summary, then one
// line per non-empty context field. Formats every event.
class SlackWebhook final : public WebhookSink {
 public:
  explicit SlackWebhook(std::string url, std::shared_ptr<WebhookDispatcher> dispatcher = nullptr);

  [[nodiscard]] std::optional<WebhookRequest> format(std::string_view event_type,
                                                     std::string_view message,
                                                     const AlertContext& context) const override;
};

inline constexpr std::string_view kPagerDutyEventsUrl = "https://events.pagerduty.com/v2/enqueue";

// PagerDuty Events API v2. circuit_opened triggers an incident (severity
// "critical") that circuit_closed resolves, under the dedup_key
// "prodsafe-circuit-<job_type>"; circuit_store_unavailable triggers one
// (severity "error") that circuit_store_available resolves, under
// "prodsafe-circuit-store-<job_type>". Every other event (circuit_half_open
// included) is ignored. An event PagerDuty refuses is logged with PagerDuty's
// answer (WebhookDispatcher), the routing key replaced by "***".
class PagerDutyEvents final : public WebhookSink {
 public:
  // Throws InvalidArgument for an empty routing key or one with whitespace or
  // control characters (the key itself is never quoted).
  explicit PagerDutyEvents(std::string routing_key,
                           std::string url = std::string(kPagerDutyEventsUrl),
                           std::shared_ptr<WebhookDispatcher> dispatcher = nullptr);

  [[nodiscard]] std::optional<WebhookRequest> format(std::string_view event_type,
                                                     std::string_view message,
                                                     const AlertContext& context) const override;

 private:
  std::string routing_key_;
};

// Any endpoint that takes JSON: {"event_type", "message", "context": {every
// field; "window_ms"; "timestamp" as ISO-8601 UTC with milliseconds; "extra"
// as an object}}. Formats every event.
class JsonWebhook final : public WebhookSink {
 public:
  explicit JsonWebhook(std::string url, std::shared_ptr<WebhookDispatcher> dispatcher = nullptr);

  [[nodiscard]] std::optional<WebhookRequest> format(std::string_view event_type,
                                                     std::string_view message,
                                                     const AlertContext& context) const override;
};

}  // namespace prodsafe::alerts
