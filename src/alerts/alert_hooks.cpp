#include "prodsafe/alerts/alert_hooks.hpp"

#include <limits.h>
#include <unistd.h>

#include <exception>
#include <utility>

#include "prodsafe/alerts/webhook.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"

namespace prodsafe::alerts {
namespace {

// Logging must not throw out of fire() (noexcept): a failure to log is dropped.
void log_hook_error(std::size_t index, const std::string& kind, std::string_view event_type,
                    std::string_view what) noexcept {
  try {
    logger()->warn("alert hook #{} ({}) threw on '{}': {}", index, kind, event_type, what);
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing left to report to
  }
}

}  // namespace

void AlertHooks::add(std::string kind, AlertHook hook) {
  if (!hook) throw InvalidArgument("AlertHooks: cannot add an empty " + kind + " hook");
  std::lock_guard lock(mutex_);
  auto next = std::make_shared<std::vector<Entry>>(*hooks_);
  next->push_back(Entry{std::move(kind), std::move(hook)});
  hooks_ = std::move(next);
}

void AlertHooks::add_log_hook(AlertHook hook) { add("log", std::move(hook)); }
void AlertHooks::add_metric_hook(AlertHook hook) { add("metric", std::move(hook)); }
void AlertHooks::add_event_hook(AlertHook hook) { add("event", std::move(hook)); }
void AlertHooks::add_webhook_hook(AlertHook hook) { add("webhook", std::move(hook)); }

void AlertHooks::add_webhook_hook(std::shared_ptr<WebhookSink> sink) {
  if (!sink) throw InvalidArgument("AlertHooks: cannot add a null webhook sink");
  add("webhook", [sink = std::move(sink)](std::string_view event_type, std::string_view message,
                                          const AlertContext& context) {
    sink->send(event_type, message, context);
  });
}

void AlertHooks::fire(std::string_view event_type, std::string_view message,
                      const AlertContext& context) noexcept {
  fired_.fetch_add(1);
  std::shared_ptr<const std::vector<Entry>> hooks;
  {
    std::lock_guard lock(mutex_);
    hooks = hooks_;
  }
  for (std::size_t i = 0; i < hooks->size(); ++i) {
    const Entry& entry = (*hooks)[i];
    try {
      entry.hook(event_type, message, context);
    } catch (const std::exception& error) {
      hook_errors_.fetch_add(1);
      log_hook_error(i, entry.kind, event_type, error.what());
    } catch (...) {
      hook_errors_.fetch_add(1);
      log_hook_error(i, entry.kind, event_type, "an exception not derived from std::exception");
    }
  }
}

std::size_t AlertHooks::size() const {
  std::lock_guard lock(mutex_);
  return hooks_->size();
}

std::string this_instance() {
  char host[HOST_NAME_MAX + 1] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    return "unknown:" + std::to_string(getpid());
  }
  return std::string(host) + ":" + std::to_string(getpid());
}

}  // namespace prodsafe::alerts
