// Delivers webhook POSTs off the caller's thread: a bounded queue and one
// worker thread per dispatcher.
//
//   auto dispatcher = std::make_shared<WebhookDispatcher>(WebhookOptions{.queue_capacity = 100});
//   dispatcher->enqueue({.url = "https://example.com/hook", .body = R"({"ok":true})"});
//
// enqueue() never blocks: when the queue is full the request is dropped and
// counted in dropped(). The worker POSTs each request in order, retrying
// connection errors, timeouts, 5xx and 429 (Too Many Requests) with a doubling
// delay; any other answer (2xx: delivered; 3xx, 4xx: failed) is final.
// Request bodies are never logged; URLs only through redact_webhook_url().
//
// The destructor stops accepting requests, waits up to `drain_timeout` for the
// queue to empty, then cancels the request in flight (one still connecting
// first connects or times out), drops what is left (counted and logged) and
// joins the worker.
//
// Thread safety: safe for concurrent use; share one dispatcher among sinks.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace prodsafe {
class Clock;
}  // namespace prodsafe

namespace prodsafe::alerts {

// One HTTP POST.
struct WebhookRequest {
  // http:// or https:// (see validate_webhook_url). A malformed URL fails the
  // request (counted in failed()) without an attempt.
  std::string url{};
  std::string body{};
  // Default: "application/json".
  std::string content_type = "application/json";
  // Who made it, for log lines, e.g. "slack". Default: "webhook".
  std::string sink = "webhook";
};

struct WebhookOptions {
  // Requests waiting for the worker (the one in flight not included); more are
  // dropped. Default: 1000. Must be at least 1.
  std::size_t queue_capacity = 1000;
  // Limit for each of connecting, sending the request and reading the answer,
  // per attempt. Default: 5 s. Must be positive.
  std::chrono::milliseconds timeout{5000};
  // Attempts per request, the first included. Default: 3. Must be at least 1
  // (1: never retry).
  int max_attempts = 3;
  // Wait before the first retry, doubled before each further one. Default:
  // 200 ms. 0: retry at once.
  std::chrono::milliseconds retry_delay{200};
  // How long the destructor waits for queued requests to be delivered before
  // dropping them. Default: 2 s. 0: drop at once (the request in flight is
  // cancelled).
  std::chrono::milliseconds drain_timeout{2000};
  // https only: a PEM file of the certificate authorities to trust. Default:
  // empty, the system's store. Server certificates and host names are always
  // verified.
  std::string ca_cert_path{};
  // Reads wall time for alerts that carry no timestamp, and sleeps between
  // retries (ManualClock: at once). Default: null, the real clock, whose retry
  // waits the destructor can cut short.
  Clock* clock = nullptr;
};

class WebhookDispatcher {
 public:
  // Starts the worker thread. Throws InvalidArgument for options out of range.
  explicit WebhookDispatcher(WebhookOptions options = {});
  ~WebhookDispatcher();
  WebhookDispatcher(const WebhookDispatcher&) = delete;
  WebhookDispatcher& operator=(const WebhookDispatcher&) = delete;

  // Queues `request` and returns at once: true if queued, false if dropped
  // (queue full, or the dispatcher is shutting down). Never throws for a full
  // queue.
  bool enqueue(WebhookRequest request);

  // Waits until every queued request was delivered or has failed, or until
  // `timeout` passes (real time). Returns true when nothing is left to do.
  bool flush(std::chrono::milliseconds timeout);

  // Requests answered with 2xx.
  [[nodiscard]] std::uint64_t delivered() const noexcept;
  // Requests given up on (attempts exhausted, a final answer, a bad URL).
  [[nodiscard]] std::uint64_t failed() const noexcept;
  // Requests never attempted: queue full, or left at shutdown.
  [[nodiscard]] std::uint64_t dropped() const noexcept;
  // Attempts repeated after a retryable failure.
  [[nodiscard]] std::uint64_t retried() const noexcept;
  // Requests queued or in flight.
  [[nodiscard]] std::size_t pending() const;

  [[nodiscard]] const WebhookOptions& options() const noexcept;
  // options().clock, or the system clock when that is null.
  [[nodiscard]] Clock& clock() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace prodsafe::alerts
