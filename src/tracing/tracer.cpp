#include "prodsafe/tracing/tracer.hpp"

#include <utility>

#include "prodsafe/core/error.hpp"

namespace prodsafe::tracing {

std::int64_t unix_nano_now() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Span::Span(std::unique_ptr<SpanData> data, std::shared_ptr<SpanExporter> exporter)
    : context_(data->context), data_(std::move(data)), exporter_(std::move(exporter)) {}

Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    end();
    context_ = other.context_;
    data_ = std::move(other.data_);
    exporter_ = std::move(other.exporter_);
  }
  return *this;
}

Span& Span::set_attribute(std::string_view key, AttributeValue value) {
  if (!data_) return *this;
  for (Attribute& attribute : data_->attributes) {
    if (attribute.key == key) {
      attribute.value = std::move(value);
      return *this;
    }
  }
  data_->attributes.push_back({std::string(key), std::move(value)});
  return *this;
}

Span& Span::add_event(std::string_view name, std::vector<Attribute> attributes) {
  if (data_) data_->events.push_back({std::string(name), unix_nano_now(), std::move(attributes)});
  return *this;
}

Span& Span::set_error(std::string_view message) {
  if (data_) {
    data_->status = SpanStatus::kError;
    data_->status_message = std::string(message);
  }
  return *this;
}

Span& Span::set_ok() {
  if (data_) {
    data_->status = SpanStatus::kOk;
    data_->status_message.clear();
  }
  return *this;
}

void Span::end() noexcept {
  if (!data_) return;
  std::unique_ptr<SpanData> data = std::move(data_);
  data->end_unix_nano = unix_nano_now();
  exporter_->export_span(std::move(*data));
  exporter_.reset();
}

Tracer::Tracer(std::shared_ptr<SpanExporter> exporter) : exporter_(std::move(exporter)) {
  if (!exporter_) throw InvalidArgument("tracing::Tracer needs an exporter, not null");
}

Span Tracer::start_span(std::string_view name, const TraceContext* parent, SpanKind kind) const {
  const bool child = parent != nullptr && parent->valid();
  if (child && !parent->sampled) {
    Span unsampled;
    unsampled.context_ = {parent->trace_id, new_span_id(), false};
    return unsampled;
  }
  auto data = std::make_unique<SpanData>();
  data->context.trace_id = child ? parent->trace_id : new_trace_id();
  data->context.span_id = new_span_id();
  data->context.sampled = true;
  if (child) data->parent_span_id = parent->span_id;
  data->name = std::string(name);
  data->kind = kind;
  data->start_unix_nano = unix_nano_now();
  return Span(std::move(data), exporter_);
}

}  // namespace prodsafe::tracing
