// Spans: what prodsafe records of an operation for OpenTelemetry, and the
// tracer that starts them and hands finished ones to an exporter.
//
//   auto exporter = std::make_shared<OtlpHttpExporter>(OtlpOptions{...});
//   Tracer tracer(exporter);
//   Span span = tracer.start_span("execute_once");
//   span.set_attribute("prodsafe.effect.type", "ORDER_PLACEMENT");
//   {
//     Span claim = tracer.start_span("claim", &span.context());
//   }  // ends here
//   span.set_error("exchange refused the order");
//
// A Span ends once, at end() or destruction, and is then given to the
// exporter, which must not block (OtlpHttpExporter queues it). A default-made
// Span records nothing: code that traces only when a tracer is configured
// uses one when there is none, at no cost but a null check.
//
// Thread safety: a Tracer is safe for concurrent use. A Span belongs to one
// thread at a time (move it to hand it over).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "prodsafe/tracing/trace_context.hpp"

namespace prodsafe::tracing {

// OTLP's SpanKind values.
enum class SpanKind { kInternal = 1, kServer = 2, kClient = 3, kProducer = 4, kConsumer = 5 };

// OTLP's status codes.
enum class SpanStatus { kUnset = 0, kOk = 1, kError = 2 };

using AttributeValue = std::variant<std::string, std::int64_t, double, bool>;

struct Attribute {
  std::string key{};
  AttributeValue value{};
};

struct SpanEvent {
  std::string name{};
  std::int64_t time_unix_nano = 0;
  std::vector<Attribute> attributes{};
};

// A finished span, as exporters receive it.
struct SpanData {
  TraceContext context{};
  // The parent's span id; none for a root span.
  std::optional<SpanId> parent_span_id{};
  std::string name{};
  SpanKind kind = SpanKind::kInternal;
  std::int64_t start_unix_nano = 0;
  std::int64_t end_unix_nano = 0;
  std::vector<Attribute> attributes{};
  std::vector<SpanEvent> events{};
  SpanStatus status = SpanStatus::kUnset;
  std::string status_message{};
};

// Receives finished spans. export_span() is called on the thread that ended
// the span, so it must return at once and never throw.
class SpanExporter {
 public:
  virtual ~SpanExporter() = default;
  virtual void export_span(SpanData span) noexcept = 0;
};

class Span {
 public:
  // Records nothing.
  Span() = default;
  ~Span() { end(); }
  Span(Span&&) noexcept = default;
  Span& operator=(Span&& other) noexcept;
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

  // False for a default-made or ended span: its setters do nothing.
  [[nodiscard]] bool recording() const noexcept { return data_ != nullptr; }
  // This span's ids (to start children, or for traceparent). All zero when
  // not recording.
  [[nodiscard]] const TraceContext& context() const noexcept { return context_; }

  Span& set_attribute(std::string_view key, AttributeValue value);
  // Overloads so that a literal string does not become a bool and every
  // integer type becomes an int64 (OTLP's intValue).
  Span& set_attribute(std::string_view key, const char* value) {
    return set_attribute(key, AttributeValue(std::string(value)));
  }
  Span& set_attribute(std::string_view key, std::string_view value) {
    return set_attribute(key, AttributeValue(std::string(value)));
  }
  Span& set_attribute(std::string_view key, const std::string& value) {
    return set_attribute(key, AttributeValue(value));
  }
  template <class T>
  requires std::is_arithmetic_v<T> Span& set_attribute(std::string_view key, T value) {
    if constexpr (std::is_same_v<T, bool>) {
      return set_attribute(key, AttributeValue(value));
    } else if constexpr (std::is_integral_v<T>) {
      return set_attribute(key, AttributeValue(static_cast<std::int64_t>(value)));
    } else {
      return set_attribute(key, AttributeValue(static_cast<double>(value)));
    }
  }
  Span& add_event(std::string_view name, std::vector<Attribute> attributes = {});
  // Status ERROR with `message` (an exception's what(), say).
  Span& set_error(std::string_view message);
  Span& set_ok();
  // Ends the span (once) and hands it to the exporter.
  void end() noexcept;

 private:
  friend class Tracer;
  Span(std::unique_ptr<SpanData> data, std::shared_ptr<SpanExporter> exporter);

  TraceContext context_{};
  std::unique_ptr<SpanData> data_{};
  std::shared_ptr<SpanExporter> exporter_{};
};

class Tracer {
 public:
  // Throws InvalidArgument when `exporter` is null.
  explicit Tracer(std::shared_ptr<SpanExporter> exporter);

  // A span under `parent` (same trace, parent_span_id = parent's span id), or
  // a root span of a new trace when `parent` is null or not valid. An
  // unsampled parent gives a span that records nothing (its context still
  // carries the parent's trace, so traceparent flows on).
  [[nodiscard]] Span start_span(std::string_view name, const TraceContext* parent = nullptr,
                                SpanKind kind = SpanKind::kInternal) const;

  [[nodiscard]] SpanExporter& exporter() const noexcept { return *exporter_; }

 private:
  std::shared_ptr<SpanExporter> exporter_;
};

// Wall time now, in nanoseconds since the Unix epoch (what OTLP records).
[[nodiscard]] std::int64_t unix_nano_now() noexcept;

}  // namespace prodsafe::tracing
