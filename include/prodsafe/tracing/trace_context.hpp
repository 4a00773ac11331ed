// W3C Trace Context: the identity of a span, and the `traceparent` header
// that carries it between processes (https://www.w3.org/TR/trace-context/).
//
//   auto parent = prodsafe::tracing::parse_traceparent(request.header("traceparent"));
//   ... start a span under *parent ...
//   outgoing.set_header("traceparent", format_traceparent(span.context()));
//
// Thread safety: TraceContext is a plain value; the functions are pure, except
// new_trace_id()/new_span_id(), which are safe for concurrent use and never
// repeat a parent's ids in a fork()ed child.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace prodsafe::tracing {

using TraceId = std::array<std::uint8_t, 16>;
using SpanId = std::array<std::uint8_t, 8>;

struct TraceContext {
  TraceId trace_id{};
  SpanId span_id{};
  // The W3C "sampled" flag: the caller records this trace.
  bool sampled = true;

  // Both ids non-zero (the W3C spec makes all-zero ids invalid).
  [[nodiscard]] bool valid() const noexcept;
  friend bool operator==(const TraceContext&, const TraceContext&) = default;
};

// Random, non-zero ids (a per-thread generator seeded from the kernel and
// reseeded in a fork()ed child).
[[nodiscard]] TraceId new_trace_id() noexcept;
[[nodiscard]] SpanId new_span_id() noexcept;

// Lowercase hex, as traceparent and OTLP/JSON write them.
[[nodiscard]] std::string to_hex(const TraceId& id);
[[nodiscard]] std::string to_hex(const SpanId& id);

// Parses "00-<32 hex>-<16 hex>-<2 hex>" (version 00; a higher version is
// read the same way, ignoring what follows the flags, as the spec asks).
// nullopt for anything else: version ff, uppercase hex, all-zero ids, wrong
// lengths, a version 00 header with trailing data. Never throws.
[[nodiscard]] std::optional<TraceContext> parse_traceparent(std::string_view header) noexcept;
// "00-<trace id>-<span id>-01" (or -00 when not sampled).
[[nodiscard]] std::string format_traceparent(const TraceContext& context);

}  // namespace prodsafe::tracing
