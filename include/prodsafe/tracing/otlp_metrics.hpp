// Pushes a metrics::Registry to an OpenTelemetry collector over OTLP/HTTP
// with the JSON encoding, as an alternative to being scraped at /metrics.
//
//   OtlpMetricsExporter exporter(metrics::default_registry(), OtlpMetricsOptions{
//       .endpoint = "http://127.0.0.1:4318/v1/metrics", .service_name = "order-worker"});
//
// Every `interval` (and at push(), and at destruction) a worker thread
// collects the registry and sends it: counters as cumulative monotonic sums,
// gauges as gauges, histograms as cumulative explicit-bucket histograms, each
// label as a string attribute. A family's overflow series (every label
// "__overflow__", registry.hpp) is sent with the single attribute
// otel.metric.overflow = true, as OpenTelemetry's SDKs mark theirs. Delivery
// is an alerts::WebhookDispatcher's (`delivery`): bounded, retried, never on
// the caller's thread.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "prodsafe/alerts/webhook_dispatcher.hpp"
#include "prodsafe/metrics/metric_family.hpp"

namespace prodsafe::metrics {
class Registry;
}  // namespace prodsafe::metrics

namespace prodsafe::tracing {

struct OtlpMetricsOptions {
  // The collector's OTLP/HTTP metrics URL. Default:
  // http://127.0.0.1:4318/v1/metrics.
  std::string endpoint = "http://127.0.0.1:4318/v1/metrics";
  // The resource's service.name. Default: "prodsafe". Must not be empty.
  std::string service_name = "prodsafe";
  std::vector<std::pair<std::string, std::string>> resource_attributes{};
  // How often the registry is pushed. Default: 10 s. 10 ms to 24 h.
  std::chrono::milliseconds interval{10000};
  // Delivery (webhook_dispatcher.hpp). Default: 4 requests queued, 10 s per
  // attempt, 3 attempts, 2 s drain.
  alerts::WebhookOptions delivery = default_delivery();

  static alerts::WebhookOptions default_delivery() {
    alerts::WebhookOptions options;
    options.queue_capacity = 4;
    options.timeout = std::chrono::seconds(10);
    return options;
  }
};

// The OTLP/JSON ExportMetricsServiceRequest for `families`, cumulative since
// `start_unix_nano`, observed at `now_unix_nano`.
[[nodiscard]] std::string encode_otlp_metrics_json(
    const std::vector<metrics::MetricFamily>& families, const OtlpMetricsOptions& options,
    std::int64_t start_unix_nano, std::int64_t now_unix_nano);

class OtlpMetricsExporter {
 public:
  // `registry` must outlive the exporter. Throws InvalidArgument for an
  // endpoint that is not an http(s) URL or an option out of range.
  OtlpMetricsExporter(metrics::Registry& registry, OtlpMetricsOptions options = {});
  ~OtlpMetricsExporter();
  OtlpMetricsExporter(const OtlpMetricsExporter&) = delete;
  OtlpMetricsExporter& operator=(const OtlpMetricsExporter&) = delete;

  // Collects and queues a push now; false when the request queue was full.
  bool push();
  // Waits until every queued push was delivered or failed, or `timeout`.
  bool flush(std::chrono::milliseconds timeout);
  [[nodiscard]] const alerts::WebhookDispatcher& dispatcher() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace prodsafe::tracing
