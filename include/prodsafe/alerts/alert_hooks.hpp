// Alert hooks (the seed's AlertHooks): functions called when something an
// operator should know happens, e.g. a circuit breaker opening fleet-wide.
//
//   AlertHooks hooks;
//   hooks.add_log_hook([](std::string_view type, std::string_view message,
//                         const AlertContext& context) { ... });
//   hooks.add_webhook_hook(slack_webhook);  // delivered off the caller's thread
//
// fire() calls every hook in the order added. A hook that throws is contained
// (logged and counted in hook_errors()); it never reaches the caller and never
// stops the other hooks. Webhook hooks only enqueue: delivery runs on a
// bounded queue with its own thread (see webhook.hpp), so a slow endpoint never
// blocks the caller.
//
// Thread safety: safe for concurrent use; add hooks before firing from
// several threads (adding takes a lock, firing copies the hook list).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace prodsafe::alerts {

// What every alert carries. Breaker alerts fill every field; other sources
// fill what applies and leave the rest empty or zero.
struct AlertContext {
  std::string job_type{};
  std::string state{};           // e.g. "OPEN"
  std::string previous_state{};  // e.g. "CLOSED"
  std::uint64_t failure_count = 0;
  std::uint64_t threshold = 0;
  std::chrono::milliseconds window{0};
  std::chrono::system_clock::time_point timestamp{};
  // Who saw it: host name and process id, e.g. "worker-3:4121".
  std::string instance{};
  // Anything else worth showing (rendered into webhook payloads).
  std::map<std::string, std::string> extra{};
};

// Event types prodsafe itself fires: every one is below. The breaker fires
// the first four once per fleet-wide transition (kCircuitOpened also for
// FORCED_OPEN), the last two once per store outage per process.
inline constexpr std::string_view kCircuitOpened = "circuit_opened";
inline constexpr std::string_view kCircuitHalfOpen = "circuit_half_open";
inline constexpr std::string_view kCircuitClosed = "circuit_closed";
inline constexpr std::string_view kCircuitDisabled = "circuit_disabled";
inline constexpr std::string_view kCircuitStoreUnavailable = "circuit_store_unavailable";
// The store answers again after an outage (see breaker::CircuitBreaker).
inline constexpr std::string_view kCircuitStoreAvailable = "circuit_store_available";
// retry::observe() fires these when RetryObservers::alert_hooks is set: a
// spike (RetrySpikeDetector; extra: count, baseline, multiplier, window_ms)
// and an anomaly (RetryAnomalyDetector; extra: anomaly, job_id, value,
// threshold).
inline constexpr std::string_view kRetrySpike = "retry_spike";
inline constexpr std::string_view kRetryAnomaly = "retry_anomaly";

using AlertHook = std::function<void(std::string_view event_type, std::string_view message,
                                     const AlertContext& context)>;

class WebhookSink;  // webhook.hpp

class AlertHooks {
 public:
  AlertHooks() = default;
  AlertHooks(const AlertHooks&) = delete;
  AlertHooks& operator=(const AlertHooks&) = delete;

  // The four kinds differ only in intent (a failing hook's log line names its
  // kind); each is called synchronously by fire(), so keep them quick. An empty
  // hook is refused with InvalidArgument.
  void add_log_hook(AlertHook hook);
  void add_metric_hook(AlertHook hook);
  void add_event_hook(AlertHook hook);
  // A plain function run synchronously like the others (for your own HTTP
  // client or queue).
  void add_webhook_hook(AlertHook hook);
  // A webhook delivered asynchronously by `sink` (Slack, PagerDuty, JSON):
  // the hook formats the alert on the caller's thread and enqueues it on the
  // sink's WebhookDispatcher, which never blocks. A null sink is refused with
  // InvalidArgument.
  void add_webhook_hook(std::shared_ptr<WebhookSink> sink);

  // Calls every hook; never throws.
  void fire(std::string_view event_type, std::string_view message,
            const AlertContext& context) noexcept;

  [[nodiscard]] std::uint64_t fired() const noexcept { return fired_.load(); }
  [[nodiscard]] std::uint64_t hook_errors() const noexcept { return hook_errors_.load(); }
  [[nodiscard]] std::size_t size() const;

 private:
  struct Entry {
    std::string kind;  // "log", "metric", "event", "webhook"
    AlertHook hook;
  };
  void add(std::string kind, AlertHook hook);

  // Guards hooks_ (the pointer; the list it points to is never changed, so
  // fire() copies the pointer and calls the hooks outside the lock). The
  // counters below are atomics, read and written without it.
  mutable std::mutex mutex_;
  std::shared_ptr<const std::vector<Entry>> hooks_ = std::make_shared<std::vector<Entry>>();
  std::atomic<std::uint64_t> fired_{0};
  std::atomic<std::uint64_t> hook_errors_{0};
};

// "host:pid" of this process, for AlertContext::instance.
[[nodiscard]] std::string this_instance();

}  // namespace prodsafe::alerts
