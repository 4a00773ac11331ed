// Retry loops as spans and breaker decisions as span events.
#include <gtest/gtest.h>

#include <mutex>
#include <stdexcept>
#include <vector>

#include "prodsafe/breaker/circuit_breaker.hpp"
#include "prodsafe/breaker/in_memory_breaker_store.hpp"
#include "prodsafe/core/clock.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/retry/executor.hpp"
#include "prodsafe/tracing/tracer.hpp"
#include "tracing/recording_exporter.hpp"

namespace prodsafe::tracing {
namespace {

using testing::RecordingExporter;

template <class T>
T value_of(const SpanData& span, std::string_view key) {
  for (const Attribute& attribute : span.attributes) {
    if (attribute.key == key) return std::get<T>(attribute.value);
  }
  ADD_FAILURE() << span.name << " has no attribute " << key;
  return T{};
}

class RetryTracingTest : public ::testing::Test {
 protected:
  retry::RetryPolicy policy() {
    retry::RetryPolicy policy;
    policy.max_attempts = 3;
    policy.base_delay = std::chrono::milliseconds(10);
    policy.clock = &clock_;
    policy.tracer = tracer_;
    policy.job_type = "settlement";
    policy.metrics = &registry_;
    return policy;
  }

  ManualClock clock_;
  metrics::Registry registry_;
  std::shared_ptr<RecordingExporter> exporter_ = std::make_shared<RecordingExporter>();
  std::shared_ptr<Tracer> tracer_ = std::make_shared<Tracer>(exporter_);
};

TEST_F(RetryTracingTest, EachAttemptIsAChildOfTheLoopsSpan) {
  int calls = 0;
  const int answer = retry::run(policy(), [&] {
    if (++calls < 3) throw StoreUnavailable("redis down");
    return 42;
  });
  EXPECT_EQ(answer, 42);
  const auto spans = exporter_->spans();
  ASSERT_EQ(spans.size(), 4U);
  const SpanData& loop = spans.back();
  EXPECT_EQ(loop.name, "prodsafe.retry");
  EXPECT_EQ(value_of<std::string>(loop, "prodsafe.retry.job_type"), "settlement");
  EXPECT_EQ(value_of<std::int64_t>(loop, "prodsafe.retry.attempts"), 3);
  EXPECT_EQ(value_of<std::string>(loop, "prodsafe.retry.outcome"), "ok");
  EXPECT_EQ(loop.status, SpanStatus::kOk);
  const std::vector<std::string> outcomes = {"retry", "retry", "ok"};
  for (int i = 0; i < 3; ++i) {
    const SpanData& attempt = spans[static_cast<std::size_t>(i)];
    EXPECT_EQ(attempt.name, "prodsafe.retry.attempt");
    ASSERT_TRUE(attempt.parent_span_id.has_value());
    EXPECT_EQ(*attempt.parent_span_id, loop.context.span_id);
    EXPECT_EQ(attempt.context.trace_id, loop.context.trace_id);
    EXPECT_EQ(value_of<std::int64_t>(attempt, "prodsafe.retry.attempt"), i + 1);
    EXPECT_EQ(value_of<std::string>(attempt, "prodsafe.retry.outcome"), outcomes[i]);
    if (i < 2) {
      EXPECT_EQ(attempt.status, SpanStatus::kError);
      EXPECT_EQ(attempt.status_message, "redis down");
      EXPECT_GE(value_of<std::int64_t>(attempt, "prodsafe.retry.delay_ms"), 0);
    }
  }
}

TEST_F(RetryTracingTest, AGivenUpLoopIsAnErrorUnderTheCallersSpan) {
  retry::RetryPolicy traced = policy();
  const auto caller = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  traced.trace_parent = caller;
  EXPECT_THROW(retry::run(traced, []() -> int { throw StoreUnavailable("still down"); }),
               StoreUnavailable);
  const auto spans = exporter_->spans();
  ASSERT_EQ(spans.size(), 4U);
  const SpanData& loop = spans.back();
  EXPECT_EQ(*loop.parent_span_id, caller->span_id);
  EXPECT_EQ(loop.status, SpanStatus::kError);
  EXPECT_EQ(loop.status_message, "max_attempts (3) reached");
  EXPECT_EQ(value_of<std::string>(spans[2], "prodsafe.retry.outcome"), "gave_up");
}

TEST_F(RetryTracingTest, ANonRetryableFailureEndsTheLoopAtOnce) {
  EXPECT_THROW(retry::run(policy(), []() -> int { throw InvalidArgument("bad order"); }),
               InvalidArgument);
  const auto spans = exporter_->spans();
  ASSERT_EQ(spans.size(), 2U);
  EXPECT_EQ(value_of<std::string>(spans[0], "prodsafe.retry.outcome"), "not_retryable");
  EXPECT_EQ(spans[0].status_message, "bad order");
  EXPECT_EQ(spans[1].status, SpanStatus::kError);
}

TEST_F(RetryTracingTest, WithoutATracerNothingIsRecorded) {
  retry::RetryPolicy untraced = policy();
  untraced.tracer = nullptr;
  EXPECT_EQ(retry::run(untraced, [] { return 1; }), 1);
  EXPECT_TRUE(exporter_->spans().empty());
}

TEST(BreakerTracingTest, DecisionsAreEventsOnTheCallersSpan) {
  ManualClock clock;
  metrics::Registry registry;
  auto exporter = std::make_shared<RecordingExporter>();
  Tracer tracer(exporter);
  breaker::CircuitBreakerOptions options;
  options.clock = &clock;
  options.metrics = &registry;
  breaker::CircuitBreaker breaker(std::make_shared<breaker::InMemoryBreakerStore>(&clock),
                                  "exchange", options);
  {
    Span span = tracer.start_span("place_order");
    EXPECT_TRUE(breaker.can_retry(span).allowed);
    breaker.force_open();
    EXPECT_FALSE(breaker.can_retry(span).allowed);
  }
  const auto spans = exporter->spans();
  ASSERT_EQ(spans.size(), 1U);
  ASSERT_EQ(spans[0].events.size(), 2U);
  const auto attribute = [](const SpanEvent& event, std::string_view key) {
    for (const Attribute& a : event.attributes) {
      if (a.key == key) return a.value;
    }
    return AttributeValue(std::string("<missing>"));
  };
  EXPECT_EQ(spans[0].events[0].name, "prodsafe.breaker.decision");
  EXPECT_EQ(std::get<bool>(attribute(spans[0].events[0], "prodsafe.breaker.allowed")), true);
  EXPECT_EQ(std::get<std::string>(attribute(spans[0].events[0], "prodsafe.breaker.state")),
            "CLOSED");
  EXPECT_EQ(std::get<bool>(attribute(spans[0].events[1], "prodsafe.breaker.allowed")), false);
  EXPECT_EQ(std::get<std::string>(attribute(spans[0].events[1], "prodsafe.breaker.job_type")),
            "exchange");
}

}  // namespace
}  // namespace prodsafe::tracing
