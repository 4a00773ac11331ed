#include "prodsafe/tracing/otlp_exporter.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "otlp_common.hpp"
#include "prodsafe/alerts/webhook.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/metrics/registry.hpp"

namespace prodsafe::tracing {
namespace {

using nlohmann::json;

json any_value(const AttributeValue& value) {
  return std::visit(
      [](const auto& v) -> json {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::string>) {
          return {{"stringValue", v}};
        } else if constexpr (std::is_same_v<V, bool>) {
          return {{"boolValue", v}};
        } else if constexpr (std::is_same_v<V, std::int64_t>) {
          return {{"intValue", std::to_string(v)}};  // int64 as a string (proto3 JSON)
        } else {
          return {{"doubleValue", v}};
        }
      },
      value);
}

json attributes(const std::vector<Attribute>& list) {
  json out = json::array();
  for (const Attribute& attribute : list) {
    out.push_back({{"key", attribute.key}, {"value", any_value(attribute.value)}});
  }
  return out;
}

json span_json(const SpanData& span) {
  json out = {{"traceId", to_hex(span.context.trace_id)},
              {"spanId", to_hex(span.context.span_id)},
              {"name", span.name},
              {"kind", static_cast<int>(span.kind)},
              {"startTimeUnixNano", std::to_string(span.start_unix_nano)},
              {"endTimeUnixNano", std::to_string(span.end_unix_nano)},
              {"attributes", attributes(span.attributes)}};
  if (span.parent_span_id) out["parentSpanId"] = to_hex(*span.parent_span_id);
  if (!span.events.empty()) {
    json events = json::array();
    for (const SpanEvent& event : span.events) {
      events.push_back({{"timeUnixNano", std::to_string(event.time_unix_nano)},
                        {"name", event.name},
                        {"attributes", attributes(event.attributes)}});
    }
    out["events"] = std::move(events);
  }
  if (span.status != SpanStatus::kUnset) {
    json status = {{"code", static_cast<int>(span.status)}};
    if (!span.status_message.empty()) status["message"] = span.status_message;
    out["status"] = std::move(status);
  }
  return out;
}

void validate(const OtlpOptions& options) {
  detail::validate_destination("OtlpOptions", options.endpoint, options.service_name);
  if (options.queue_capacity < 1)
    throw InvalidArgument("OtlpOptions::queue_capacity must be at least 1");
  if (options.max_batch < 1) throw InvalidArgument("OtlpOptions::max_batch must be at least 1");
  if (options.flush_interval < std::chrono::milliseconds(1) ||
      options.flush_interval > std::chrono::hours(24))
    throw InvalidArgument("OtlpOptions::flush_interval must be 1 ms to 24 h");
}

}  // namespace

std::string encode_otlp_json(const std::vector<SpanData>& spans, const OtlpOptions& options) {
  json list = json::array();
  for (const SpanData& span : spans) list.push_back(span_json(span));
  const json request = {
      {"resourceSpans",
       json::array(
           {{{"resource", detail::resource_json(options.service_name, options.resource_attributes)},
             {"scopeSpans",
              json::array({{{"scope", {{"name", "prodsafe"}}}, {"spans", std::move(list)}}})}}})}};
  // Invalid UTF-8 in a name or attribute (an effect key is the caller's
  // bytes) is replaced, not thrown: a span must never fail its caller.
  return request.dump(-1, ' ', false, json::error_handler_t::replace);
}

struct OtlpHttpExporter::State {
  explicit State(const OtlpOptions& options)
      : dispatcher(options.delivery),
        registry(options.delivery.metrics != nullptr ? *options.delivery.metrics
                                                     : metrics::default_registry()),
        spans(registry.counter("prodsafe_tracing_spans_total",
                               "Spans handed to the OTLP exporter, by outcome: queued for "
                               "export, or dropped because a queue was full.",
                               {"outcome"})),
        queued_series(spans.labels({"queued"})),
        dropped_series(spans.labels({"dropped"})) {}

  alerts::WebhookDispatcher dispatcher;
  metrics::Registry& registry;
  metrics::Family<metrics::Counter>& spans;
  metrics::Counter& queued_series;
  metrics::Counter& dropped_series;

  std::mutex mutex;
  std::condition_variable wake;
  std::condition_variable idle;
  std::deque<SpanData> queue;
  bool stopping = false;
  bool flush_now = false;
  // Batches taken from the queue and not yet handed to the dispatcher.
  std::size_t sending = 0;
  std::atomic<std::uint64_t> queued{0};
  std::atomic<std::uint64_t> dropped{0};
  std::thread worker;
};

OtlpHttpExporter::OtlpHttpExporter(OtlpOptions options) : options_(std::move(options)) {
  validate(options_);
  state_ = std::make_unique<State>(options_);
  state_->worker = std::thread([this] { run(); });
}

OtlpHttpExporter::~OtlpHttpExporter() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_all();
  state_->worker.join();
  // The dispatcher's destructor drains what was handed to it.
}

void OtlpHttpExporter::export_span(SpanData span) noexcept {
  State& state = *state_;
  bool wake = false;
  {
    std::lock_guard lock(state.mutex);
    if (state.stopping || state.queue.size() >= options_.queue_capacity) {
      state.dropped.fetch_add(1, std::memory_order_relaxed);
      state.dropped_series.inc();
      return;
    }
    try {
      state.queue.push_back(std::move(span));
    } catch (...) {  // out of memory: drop it, as a full queue would
      state.dropped.fetch_add(1, std::memory_order_relaxed);
      state.dropped_series.inc();
      return;
    }
    // The worker sleeps while the queue is empty, and starts the batch's
    // flush_interval at its first span; a full batch goes at once.
    wake = state.queue.size() == 1 || state.queue.size() >= options_.max_batch;
  }
  state.queued.fetch_add(1, std::memory_order_relaxed);
  state.queued_series.inc();
  if (wake) state.wake.notify_one();
}

void OtlpHttpExporter::run() {
  State& state = *state_;
  std::unique_lock lock(state.mutex);
  while (true) {
    if (state.queue.empty()) {
      state.idle.notify_all();
      if (state.stopping) return;
      state.wake.wait(lock, [&] { return state.stopping || !state.queue.empty(); });
      continue;
    }
    // The first span of a batch waits at most flush_interval.
    state.wake.wait_for(lock, options_.flush_interval, [&] {
      return state.stopping || state.flush_now || state.queue.size() >= options_.max_batch;
    });
    while (!state.queue.empty()) {
      std::vector<SpanData> batch;
      const std::size_t count = std::min(options_.max_batch, state.queue.size());
      batch.reserve(count);
      for (std::size_t i = 0; i < count; ++i) {
        batch.push_back(std::move(state.queue.front()));
        state.queue.pop_front();
      }
      ++state.sending;
      lock.unlock();
      send(std::move(batch));
      lock.lock();
      --state.sending;
      if (!state.flush_now && !state.stopping && state.queue.size() < options_.max_batch) break;
    }
    state.flush_now = false;
  }
}

void OtlpHttpExporter::send(std::vector<SpanData> batch) {
  State& state = *state_;
  std::string body;
  try {
    body = encode_otlp_json(batch, options_);
  } catch (const std::exception& error) {
    logger()->warn("tracing: dropped {} spans that could not be encoded: {}", batch.size(),
                   error.what());
    state.dropped.fetch_add(batch.size(), std::memory_order_relaxed);
    state.dropped_series.inc(static_cast<double>(batch.size()));
    return;
  }
  alerts::WebhookRequest request;
  request.url = options_.endpoint;
  request.body = std::move(body);
  request.sink = "otlp";
  if (!state.dispatcher.enqueue(std::move(request))) {
    state.dropped.fetch_add(batch.size(), std::memory_order_relaxed);
    state.dropped_series.inc(static_cast<double>(batch.size()));
  }
}

bool OtlpHttpExporter::flush(std::chrono::milliseconds timeout) {
  State& state = *state_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  {
    std::unique_lock lock(state.mutex);
    if (!state.queue.empty()) {
      state.flush_now = true;
      state.wake.notify_all();
    }
    if (!state.idle.wait_until(lock, deadline,
                               [&] { return state.queue.empty() && state.sending == 0; })) {
      return false;
    }
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return state.dispatcher.flush(std::max(left, std::chrono::milliseconds(0)));
}

std::uint64_t OtlpHttpExporter::queued() const noexcept { return state_->queued.load(); }
std::uint64_t OtlpHttpExporter::dropped() const noexcept { return state_->dropped.load(); }
const alerts::WebhookDispatcher& OtlpHttpExporter::dispatcher() const noexcept {
  return state_->dispatcher;
}

namespace detail {

nlohmann::json resource_json(const std::string& service_name,
                             const std::vector<std::pair<std::string, std::string>>& attributes) {
  json list = json::array();
  list.push_back({{"key", "service.name"}, {"value", {{"stringValue", service_name}}}});
  for (const auto& [key, value] : attributes) {
    list.push_back({{"key", key}, {"value", {{"stringValue", value}}}});
  }
  return {{"attributes", std::move(list)}};
}

void validate_destination(std::string_view options, const std::string& endpoint,
                          const std::string& service_name) {
  try {
    alerts::validate_webhook_url(endpoint);
  } catch (const InvalidArgument& error) {
    throw InvalidArgument(std::string(options) + "::endpoint: " + error.what());
  }
  if (service_name.empty())
    throw InvalidArgument(std::string(options) + "::service_name must not be empty");
}

}  // namespace detail

}  // namespace prodsafe::tracing
