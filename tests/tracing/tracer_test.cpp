#include "prodsafe/tracing/tracer.hpp"
#include "tracing/recording_exporter.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "prodsafe/core/error.hpp"

namespace prodsafe::tracing {
namespace {

using testing::RecordingExporter;

TEST(TracerTest, ChildrenShareTheTraceAndNameTheirParent) {
  auto exporter = std::make_shared<RecordingExporter>();
  Tracer tracer(exporter);
  TraceContext root_context;
  {
    Span root = tracer.start_span("execute_once");
    root_context = root.context();
    Span claim = tracer.start_span("claim", &root.context(), SpanKind::kClient);
    claim.set_attribute("prodsafe.fencing_token", std::uint64_t{7});
  }
  const auto spans = exporter->spans();
  ASSERT_EQ(spans.size(), 2U);
  const SpanData& claim = spans[0];  // ends first
  const SpanData& root = spans[1];
  EXPECT_EQ(root.name, "execute_once");
  EXPECT_FALSE(root.parent_span_id.has_value());
  EXPECT_EQ(root.context, root_context);
  EXPECT_EQ(claim.context.trace_id, root.context.trace_id);
  ASSERT_TRUE(claim.parent_span_id.has_value());
  EXPECT_EQ(*claim.parent_span_id, root.context.span_id);
  EXPECT_NE(claim.context.span_id, root.context.span_id);
  EXPECT_EQ(claim.kind, SpanKind::kClient);
  EXPECT_LE(root.start_unix_nano, claim.start_unix_nano);
  EXPECT_LE(claim.end_unix_nano, root.end_unix_nano);
  ASSERT_EQ(claim.attributes.size(), 1U);
  EXPECT_EQ(std::get<std::int64_t>(claim.attributes[0].value), 7);
}

TEST(TracerTest, ARemoteParentFromTraceparentIsContinued) {
  auto exporter = std::make_shared<RecordingExporter>();
  Tracer tracer(exporter);
  const auto remote = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(remote.has_value());
  tracer.start_span("execute_once", &*remote).end();
  const auto spans = exporter->spans();
  ASSERT_EQ(spans.size(), 1U);
  EXPECT_EQ(to_hex(spans[0].context.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(to_hex(*spans[0].parent_span_id), "00f067aa0ba902b7");
}

TEST(TracerTest, AnUnsampledParentRecordsNothingButCarriesTheTrace) {
  auto exporter = std::make_shared<RecordingExporter>();
  Tracer tracer(exporter);
  auto remote = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(remote.has_value());
  {
    Span span = tracer.start_span("execute_once", &*remote);
    EXPECT_FALSE(span.recording());
    EXPECT_EQ(span.context().trace_id, remote->trace_id);
    EXPECT_FALSE(span.context().sampled);
    span.set_attribute("ignored", "x").set_error("ignored");
  }
  EXPECT_TRUE(exporter->spans().empty());
}

TEST(TracerTest, ASpanEndsOnceEventsAndStatusAreKept) {
  auto exporter = std::make_shared<RecordingExporter>();
  Tracer tracer(exporter);
  Span span = tracer.start_span("can_retry");
  span.add_event("breaker.refused", {{"prodsafe.breaker.state", std::string("open")}});
  span.set_attribute("a", 1).set_attribute("a", 2);  // the last value wins, one attribute
  span.set_error("open");
  span.end();
  span.end();
  span.set_attribute("after", true);  // ignored: ended
  const auto spans = exporter->spans();
  ASSERT_EQ(spans.size(), 1U);
  EXPECT_EQ(spans[0].status, SpanStatus::kError);
  EXPECT_EQ(spans[0].status_message, "open");
  ASSERT_EQ(spans[0].events.size(), 1U);
  EXPECT_EQ(spans[0].events[0].name, "breaker.refused");
  ASSERT_EQ(spans[0].attributes.size(), 1U);
  EXPECT_EQ(std::get<std::int64_t>(spans[0].attributes[0].value), 2);
}

TEST(TracerTest, MovingASpanKeepsOneEnd) {
  auto exporter = std::make_shared<RecordingExporter>();
  Tracer tracer(exporter);
  {
    Span first = tracer.start_span("one");
    Span moved = std::move(first);
    Span other = tracer.start_span("two");
    other = std::move(moved);  // ends "two", takes over "one"
  }
  const auto spans = exporter->spans();
  ASSERT_EQ(spans.size(), 2U);
  EXPECT_EQ(spans[0].name, "two");
  EXPECT_EQ(spans[1].name, "one");
}

TEST(TracerTest, ADefaultSpanRecordsNothing) {
  Span span;
  EXPECT_FALSE(span.recording());
  span.set_attribute("x", "y").add_event("e").set_ok();
  EXPECT_FALSE(span.context().valid());
}

TEST(TracerTest, ANullExporterIsRefused) { EXPECT_THROW(Tracer(nullptr), InvalidArgument); }

}  // namespace
}  // namespace prodsafe::tracing
