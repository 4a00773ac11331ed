// execute_once traced end to end: a RedisEffectStore on a real redis-server,
// spans exported over OTLP/HTTP JSON to a real HTTP server, the request
// bodies decoded and the span tree checked, with the caller's traceparent in
// and the effect's traceparent out.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "alerts/test_http_server.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/tracing/otlp_exporter.hpp"
#include "support/redis_fixture.hpp"

namespace prodsafe::tracing {
namespace {

using alerts::testing::TestHttpServer;
using idempotency::CallOptions;
using idempotency::EffectContext;
using idempotency::EffectType;
using idempotency::RedisEffectStore;
using idempotency::SideEffectWrapper;
using idempotency::WrapperOptions;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr std::string_view kCaller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

class WrapperTracingTest : public prodsafe::testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    OtlpOptions otlp;
    otlp.endpoint = collector_.url("/v1/traces");
    otlp.service_name = "order-worker";
    otlp.delivery.metrics = &registry_;
    exporter_ = std::make_shared<OtlpHttpExporter>(otlp);
    tracer_ = std::make_shared<Tracer>(exporter_);
    client_ = make_client();
    WrapperOptions options;
    options.tracer = tracer_;
    options.metrics = &registry_;
    options.journal_directory = ::testing::TempDir() + "/wrapper_tracing_journal";
    wrapper_ =
        std::make_unique<SideEffectWrapper>(std::make_shared<RedisEffectStore>(client_), options);
  }

  // Every exported span by name (names are unique per test below), after a flush.
  std::multimap<std::string, json> spans() {
    EXPECT_TRUE(exporter_->flush(5s));
    std::multimap<std::string, json> out;
    for (const auto& request : collector_.requests()) {
      const json body = json::parse(request.body);
      for (const json& span : body["resourceSpans"][0]["scopeSpans"][0]["spans"]) {
        out.emplace(span["name"].get<std::string>(), span);
      }
    }
    return out;
  }

  static std::string attribute(const json& span, std::string_view key) {
    for (const json& item : span["attributes"]) {
      if (item["key"] == key) {
        const json& value = item["value"];
        if (value.contains("stringValue")) return value["stringValue"];
        if (value.contains("intValue")) return value["intValue"];
        if (value.contains("boolValue")) return value["boolValue"].get<bool>() ? "true" : "false";
      }
    }
    return "<missing>";
  }

  TestHttpServer collector_;
  metrics::Registry registry_;
  std::shared_ptr<OtlpHttpExporter> exporter_;
  std::shared_ptr<Tracer> tracer_;
  std::shared_ptr<redis::Client> client_;
  std::unique_ptr<SideEffectWrapper> wrapper_;
};

TEST_F(WrapperTracingTest, AnExecutionIsASpanTreeUnderTheCallersTrace) {
  CallOptions call;
  call.trace_parent = parse_traceparent(kCaller);
  std::string handed_over;
  const auto outcome = wrapper_->execute_once(
      EffectType::ORDER_PLACEMENT, "order-1",
      [&](const EffectContext& context) {
        handed_over = context.traceparent;
        // The user's exchange call, a child of the effect's span.
        const auto parent = parse_traceparent(context.traceparent);
        Span exchange = tracer_->start_span("exchange.place_order", &*parent, SpanKind::kClient);
        return std::string("filled");
      },
      call);
  ASSERT_TRUE(outcome.executed);

  const auto all = spans();
  ASSERT_EQ(all.count("prodsafe.execute_once"), 1U);
  const json& root = all.find("prodsafe.execute_once")->second;
  const json& claim = all.find("prodsafe.claim")->second;
  const json& effect = all.find("prodsafe.effect")->second;
  const json& commit = all.find("prodsafe.commit")->second;
  const json& exchange = all.find("exchange.place_order")->second;
  EXPECT_EQ(root["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(root["parentSpanId"], "00f067aa0ba902b7");
  for (const json* child : {&claim, &effect, &commit}) {
    EXPECT_EQ((*child)["traceId"], root["traceId"]);
    EXPECT_EQ((*child)["parentSpanId"], root["spanId"]);
  }
  EXPECT_EQ(exchange["parentSpanId"], effect["spanId"]);
  EXPECT_EQ(handed_over,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-" + effect["spanId"].get<std::string>() + "-01");
  EXPECT_EQ(attribute(root, "prodsafe.effect.type"), "ORDER_PLACEMENT");
  EXPECT_EQ(attribute(root, "prodsafe.effect.key"), outcome.key);
  EXPECT_EQ(attribute(root, "prodsafe.fencing_token"), std::to_string(outcome.fencing_token));
  EXPECT_EQ(attribute(root, "prodsafe.outcome"), "executed");
  EXPECT_EQ(attribute(root, "prodsafe.recovering"), "false");
  EXPECT_EQ(attribute(claim, "prodsafe.claim.status"), "claimed");
}

TEST_F(WrapperTracingTest, ADuplicateHasOnlyTheClaim) {
  wrapper_->execute_once(EffectType::PNL_WRITE, "pnl-1", [] { return 1; });
  const auto again = wrapper_->execute_once(EffectType::PNL_WRITE, "pnl-1", [] { return 2; });
  EXPECT_FALSE(again.executed);
  const auto all = spans();
  EXPECT_EQ(all.count("prodsafe.execute_once"), 2U);
  EXPECT_EQ(all.count("prodsafe.claim"), 2U);
  EXPECT_EQ(all.count("prodsafe.effect"), 1U);
  EXPECT_EQ(all.count("prodsafe.commit"), 1U);
  std::vector<std::string> outcomes;
  for (auto [it, end] = all.equal_range("prodsafe.execute_once"); it != end; ++it) {
    outcomes.push_back(attribute(it->second, "prodsafe.outcome"));
  }
  std::sort(outcomes.begin(), outcomes.end());
  EXPECT_EQ(outcomes, (std::vector<std::string>{"duplicate", "executed"}));
}

TEST_F(WrapperTracingTest, AnEffectThatThrowsMarksItsSpansAsErrors) {
  EXPECT_THROW(wrapper_->execute_once(EffectType::LEDGER_WRITE, "entry-1",
                                      []() -> int { throw std::runtime_error("ledger down"); }),
               std::runtime_error);
  const auto all = spans();
  const json& root = all.find("prodsafe.execute_once")->second;
  const json& effect = all.find("prodsafe.effect")->second;
  EXPECT_EQ(root["status"]["code"], 2);
  EXPECT_EQ(root["status"]["message"], "ledger down");
  EXPECT_EQ(effect["status"]["code"], 2);
  EXPECT_EQ(attribute(root, "prodsafe.outcome"), "effect_error");
  EXPECT_EQ(all.count("prodsafe.commit"), 0U);
}

TEST_F(WrapperTracingTest, AnUnsampledCallerGetsNoSpansButItsTraceFlowsOn) {
  CallOptions call;
  call.trace_parent = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  std::string handed_over;
  wrapper_->execute_once(
      EffectType::POSITION_UPDATE, "pos-1",
      [&](const EffectContext& context) {
        handed_over = context.traceparent;
        return 1;
      },
      call);
  EXPECT_TRUE(spans().empty());
  ASSERT_TRUE(parse_traceparent(handed_over).has_value()) << handed_over;
  EXPECT_EQ(handed_over.substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  EXPECT_EQ(handed_over.substr(53), "00");
}

TEST_F(WrapperTracingTest, WithoutATracerTheEffectGetsNoTraceparent) {
  WrapperOptions options;
  options.metrics = &registry_;
  options.journal_directory = ::testing::TempDir() + "/wrapper_tracing_journal_off";
  SideEffectWrapper untraced(std::make_shared<RedisEffectStore>(client_), options);
  std::string handed_over = "unset";
  untraced.execute_once(EffectType::POSITION_UPDATE, "pos-2", [&](const EffectContext& context) {
    handed_over = context.traceparent;
    return 1;
  });
  EXPECT_EQ(handed_over, "");
}

}  // namespace
}  // namespace prodsafe::tracing
