#include "prodsafe/tracing/otlp_metrics.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "otlp_common.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/tracing/tracer.hpp"

namespace prodsafe::tracing {
namespace {

using nlohmann::json;

constexpr int kCumulative = 2;  // AGGREGATION_TEMPORALITY_CUMULATIVE

bool is_overflow(const metrics::Sample& sample) {
  return !sample.label_values.empty() &&
         std::all_of(sample.label_values.begin(), sample.label_values.end(),
                     [](const std::string& v) { return v == metrics::kOverflowValue; });
}

json point_attributes(const metrics::MetricFamily& family, const metrics::Sample& sample) {
  json out = json::array();
  if (is_overflow(sample)) {
    out.push_back({{"key", "otel.metric.overflow"}, {"value", {{"boolValue", true}}}});
    return out;
  }
  for (std::size_t i = 0; i < family.label_names.size() && i < sample.label_values.size(); ++i) {
    out.push_back(
        {{"key", family.label_names[i]}, {"value", {{"stringValue", sample.label_values[i]}}}});
  }
  return out;
}

json metric_json(const metrics::MetricFamily& family, std::int64_t start, std::int64_t now) {
  const std::string start_text = std::to_string(start);
  const std::string now_text = std::to_string(now);
  json points = json::array();
  for (const metrics::Sample& sample : family.samples) {
    json point = {{"attributes", point_attributes(family, sample)},
                  {"startTimeUnixNano", start_text},
                  {"timeUnixNano", now_text}};
    if (family.type == metrics::MetricType::kHistogram) {
      json counts = json::array();
      for (std::uint64_t count : sample.histogram.counts) counts.push_back(std::to_string(count));
      point["count"] = std::to_string(sample.histogram.count);
      point["sum"] = sample.histogram.sum;
      point["bucketCounts"] = std::move(counts);
      point["explicitBounds"] = sample.histogram.bounds;
    } else {
      point["asDouble"] = sample.value;
    }
    points.push_back(std::move(point));
  }
  json metric = {{"name", family.name}, {"description", family.help}};
  switch (family.type) {
    case metrics::MetricType::kCounter:
      metric["sum"] = {{"aggregationTemporality", kCumulative},
                       {"isMonotonic", true},
                       {"dataPoints", std::move(points)}};
      break;
    case metrics::MetricType::kGauge:
      metric["gauge"] = {{"dataPoints", std::move(points)}};
      break;
    case metrics::MetricType::kHistogram:
      metric["histogram"] = {{"aggregationTemporality", kCumulative},
                             {"dataPoints", std::move(points)}};
      break;
  }
  return metric;
}

void validate(const OtlpMetricsOptions& options) {
  detail::validate_destination("OtlpMetricsOptions", options.endpoint, options.service_name);
  if (options.interval < std::chrono::milliseconds(10) || options.interval > std::chrono::hours(24))
    throw InvalidArgument("OtlpMetricsOptions::interval must be 10 ms to 24 h");
}

}  // namespace

std::string encode_otlp_metrics_json(const std::vector<metrics::MetricFamily>& families,
                                     const OtlpMetricsOptions& options,
                                     std::int64_t start_unix_nano, std::int64_t now_unix_nano) {
  json list = json::array();
  for (const metrics::MetricFamily& family : families) {
    if (!family.samples.empty())
      list.push_back(metric_json(family, start_unix_nano, now_unix_nano));
  }
  const json request = {
      {"resourceMetrics",
       json::array(
           {{{"resource", detail::resource_json(options.service_name, options.resource_attributes)},
             {"scopeMetrics", json::array({{{"scope", {{"name", "prodsafe"}}},
                                            {"metrics", std::move(list)}}})}}})}};
  return request.dump(-1, ' ', false, json::error_handler_t::replace);
}

struct OtlpMetricsExporter::State {
  State(metrics::Registry& r, OtlpMetricsOptions o)
      : registry(r), options(std::move(o)), dispatcher(options.delivery) {}

  metrics::Registry& registry;
  const OtlpMetricsOptions options;
  const std::int64_t start = unix_nano_now();
  alerts::WebhookDispatcher dispatcher;
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  std::thread worker;

  bool push() {
    alerts::WebhookRequest request;
    request.url = options.endpoint;
    request.body = encode_otlp_metrics_json(registry.collect(), options, start, unix_nano_now());
    request.sink = "otlp_metrics";
    return dispatcher.enqueue(std::move(request));
  }
};

OtlpMetricsExporter::OtlpMetricsExporter(metrics::Registry& registry, OtlpMetricsOptions options) {
  validate(options);
  state_ = std::make_unique<State>(registry, std::move(options));
  State& state = *state_;
  state.worker = std::thread([&state] {
    std::unique_lock lock(state.mutex);
    while (!state.stopping) {
      if (state.wake.wait_for(lock, state.options.interval, [&] { return state.stopping; })) break;
      lock.unlock();
      state.push();
      lock.lock();
    }
  });
}

OtlpMetricsExporter::~OtlpMetricsExporter() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_all();
  state_->worker.join();
  state_->push();  // the last values; the dispatcher drains them
}

bool OtlpMetricsExporter::push() { return state_->push(); }

bool OtlpMetricsExporter::flush(std::chrono::milliseconds timeout) {
  return state_->dispatcher.flush(timeout);
}

const alerts::WebhookDispatcher& OtlpMetricsExporter::dispatcher() const noexcept {
  return state_->dispatcher;
}

}  // namespace prodsafe::tracing
