// Delivers webhook POSTs off the caller's thread: a bounded queue and one
// worker thread per dispatcher.
//
//   auto dispatcher = std::make_shared<WebhookDispatcher>(WebhookOptions{.queue_capacity = 100});
//   dispatcher->enqueue({.url = "https://example.com/hook", .body = R"({"ok":true})"});
//
// enqueue() never blocks: when the queue is full the request is dropped and
// counted in dropped(). The worker POSTs each request, retrying connection
// errors, timeouts, 5xx and 429 (Too Many Requests) with a doubling delay; any
// other answer (2xx: delivered; 3xx, 4xx: failed) is final. Each attempt
// (DNS lookup, connect, TLS, request and the whole answer) ends by
// `timeout`, however slowly the endpoint answers.
//
// A 429 or 503 with a Retry-After header (seconds or an HTTP-date) is retried
// no sooner than it asks, up to `max_retry_after`. A request waiting for its
// retry does not hold the worker: requests to other endpoints (scheme, host
// and port) are delivered meanwhile, while those to the same endpoint wait
// behind it, so each endpoint still gets its requests in order (a PagerDuty
// resolve never overtakes its trigger). A waiting request stays in the queue
// and counts against `queue_capacity`.
//
// Request bodies are never logged; URLs only through redact_webhook_url(). A
// request that fails on an answer logs the answer's body (its first 1 KiB,
// escaped, with the URL's path and query and the request's `secrets`
// redacted), e.g. PagerDuty's reason for refusing an event.
//
// Counts go to `metrics` (docs/metrics.md):
// prodsafe_alerts_webhook_requests_total{sink, outcome} (delivered, failed,
// dropped) and prodsafe_alerts_webhook_retries_total{sink}.
//
// The destructor stops accepting requests, waits up to `drain_timeout` for the
// queue to empty, then cuts off the attempt in flight, drops what is left
// (counted and logged) and joins the worker.
//
// Thread safety: safe for concurrent use; share one dispatcher among sinks.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace prodsafe {
class Clock;
}  // namespace prodsafe

namespace prodsafe::metrics {
class Registry;
}  // namespace prodsafe::metrics

namespace prodsafe::alerts {

// One HTTP POST.
struct WebhookRequest {
  // http:// or https:// (see validate_webhook_url). A malformed URL fails the
  // request (counted in failed()) without an attempt.
  std::string url{};
  std::string body{};
  // Default: "application/json".
  std::string content_type = "application/json";
  // Who made it, for log lines and the `sink` label, e.g. "slack". Default:
  // "webhook".
  std::string sink = "webhook";
  // Strings never to log (a PagerDuty routing key): replaced by "***" in what
  // is logged of an answer. The URL's path, query and credentials always are.
  // Default: none.
  std::vector<std::string> secrets{};
};

struct WebhookOptions {
  // Requests waiting for the worker, those waiting for a retry included (the
  // one in flight not included); more are dropped. Default: 1000. Must be at
  // least 1.
  std::size_t queue_capacity = 1000;
  // Deadline for each attempt as a whole: DNS lookup, connecting, TLS,
  // sending the request and reading the whole answer. Default: 5 s. Must be
  // positive.
  std::chrono::milliseconds timeout{5000};
  // Attempts per request, the first included. Default: 3. Must be at least 1
  // (1: never retry).
  int max_attempts = 3;
  // Wait before the first retry, doubled before each further one, up to a
  // day. Default: 200 ms. 0: retry at once.
  std::chrono::milliseconds retry_delay{200};
  // The longest wait a Retry-After header (of a 429 or 503) may impose before
  // the next attempt; a longer one is cut to this. Default: 60 s. 0: ignore
  // Retry-After. Must be >= 0. The wait still counts against max_attempts and
  // ends at shutdown (drain_timeout).
  std::chrono::milliseconds max_retry_after{60000};
  // How long the destructor waits for queued requests to be delivered before
  // dropping them. Default: 2 s. 0: drop at once (the request in flight is
  // cancelled).
  std::chrono::milliseconds drain_timeout{2000};
  // https only: a PEM file of the certificate authorities to trust. Default:
  // empty, the system's store. Server certificates and host names are always
  // verified.
  std::string ca_cert_path{};
  // Reads wall time for alerts that carry no timestamp and for Retry-After
  // dates, and times the waits between retries (ManualClock: at once).
  // Attempt deadlines always run on the real clock. Default: null, the real
  // clock, whose retry waits the destructor can cut short.
  Clock* clock = nullptr;
  // Where the dispatcher's counts go (docs/metrics.md). Default: nullptr,
  // metrics::default_registry(). Must outlive the dispatcher.
  metrics::Registry* metrics = nullptr;
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
  // Requests given up on (attempts exhausted, a final answer, a bad URL, or
  // waiting for a retry at shutdown).
  [[nodiscard]] std::uint64_t failed() const noexcept;
  // Requests never attempted: queue full, or still queued at shutdown.
  [[nodiscard]] std::uint64_t dropped() const noexcept;
  // Attempts repeated after a retryable failure.
  [[nodiscard]] std::uint64_t retried() const noexcept;
  // Requests queued (waiting for a retry included) or in flight.
  [[nodiscard]] std::size_t pending() const;

  [[nodiscard]] const WebhookOptions& options() const noexcept;
  // options().clock, or the system clock when that is null.
  [[nodiscard]] Clock& clock() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace prodsafe::alerts
