// Exports spans to an OpenTelemetry collector over OTLP/HTTP with the JSON
// encoding (https://opentelemetry.io/docs/specs/otlp/), written here because
// Debian has no opentelemetry-cpp.
//
//   auto exporter = std::make_shared<OtlpHttpExporter>(OtlpOptions{
//       .endpoint = "http://127.0.0.1:4318/v1/traces", .service_name = "order-worker"});
//   Tracer tracer(exporter);
//
// export_span() never blocks and never throws: it appends to a bounded queue,
// and when the queue is full the span is dropped and counted (dropped()). A
// worker thread sends the queue in batches of up to max_batch spans, when a
// batch is full or flush_interval after its first span, through an
// alerts::WebhookDispatcher (its options are `delivery`: a deadline per
// attempt, retries of 5xx, 429 and connection errors with Retry-After
// honoured, a bounded queue of requests, a drain at shutdown). Counts go to
// prodsafe_tracing_spans_total{outcome} (queued, dropped) and the
// dispatcher's prodsafe_alerts_webhook_requests_total{sink="otlp"}.
//
// The destructor sends what is queued and waits for it up to
// delivery.drain_timeout.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "prodsafe/alerts/webhook_dispatcher.hpp"
#include "prodsafe/tracing/tracer.hpp"

namespace prodsafe::tracing {

struct OtlpOptions {
  // The collector's OTLP/HTTP traces URL (http:// or https://). Default: a
  // collector on this host, http://127.0.0.1:4318/v1/traces.
  std::string endpoint = "http://127.0.0.1:4318/v1/traces";
  // The resource's service.name. Default: "prodsafe". Must not be empty.
  std::string service_name = "prodsafe";
  // Further resource attributes (service.instance.id, deployment.environment,
  // ...). Default: none.
  std::vector<std::pair<std::string, std::string>> resource_attributes{};
  // Spans waiting to be sent; further ones are dropped and counted. Default:
  // 2,048. At least 1.
  std::size_t queue_capacity = 2048;
  // Spans per request. Default: 512. At least 1.
  std::size_t max_batch = 512;
  // Longest a span waits before its batch is sent. Default: 1 s. 1 ms to 24 h.
  std::chrono::milliseconds flush_interval{1000};
  // How each request is delivered (see webhook_dispatcher.hpp). Default: 8
  // requests queued, 10 s per attempt, 3 attempts, 2 s drain.
  alerts::WebhookOptions delivery = default_delivery();

  static alerts::WebhookOptions default_delivery() {
    alerts::WebhookOptions options;
    options.queue_capacity = 8;
    options.timeout = std::chrono::seconds(10);
    return options;
  }
};

// The OTLP/JSON ExportTraceServiceRequest for `spans` (one resource, one
// scope "prodsafe"): ids as lowercase hex, times and 64-bit integers as
// decimal strings, attributes as typed AnyValues.
[[nodiscard]] std::string encode_otlp_json(const std::vector<SpanData>& spans,
                                           const OtlpOptions& options);

class OtlpHttpExporter final : public SpanExporter {
 public:
  // Throws InvalidArgument for an endpoint that is not an http(s) URL or an
  // option out of range.
  explicit OtlpHttpExporter(OtlpOptions options = {});
  ~OtlpHttpExporter() override;
  OtlpHttpExporter(const OtlpHttpExporter&) = delete;
  OtlpHttpExporter& operator=(const OtlpHttpExporter&) = delete;

  void export_span(SpanData span) noexcept override;

  // Sends what is queued now and waits until every request was delivered or
  // failed, or `timeout` passes. True when nothing is left.
  bool flush(std::chrono::milliseconds timeout);

  // Spans accepted into the queue / dropped because it was full (or because
  // the dispatcher's request queue was).
  [[nodiscard]] std::uint64_t queued() const noexcept;
  [[nodiscard]] std::uint64_t dropped() const noexcept;
  // The dispatcher's counts of requests (batches).
  [[nodiscard]] const alerts::WebhookDispatcher& dispatcher() const noexcept;
  [[nodiscard]] const OtlpOptions& options() const noexcept { return options_; }

 private:
  struct State;
  void run();
  void send(std::vector<SpanData> batch);

  OtlpOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace prodsafe::tracing
