// The OTLP/HTTP JSON exporter against a real HTTP server on loopback: the
// request bodies are decoded and checked against the OTLP JSON encoding's
// required fields and the span tree.
#include "prodsafe/tracing/otlp_exporter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "alerts/test_http_server.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/metrics/text_serializer.hpp"

namespace prodsafe::tracing {
namespace {

using alerts::testing::Reply;
using alerts::testing::TestHttpServer;
using nlohmann::json;
using namespace std::chrono_literals;

OtlpOptions options_for(const TestHttpServer& server, metrics::Registry& registry) {
  OtlpOptions options;
  options.endpoint = server.url("/v1/traces");
  options.service_name = "order-worker";
  options.resource_attributes = {{"deployment.environment", "test"}};
  options.delivery.metrics = &registry;
  options.delivery.retry_delay = 10ms;
  return options;
}

// Every span of every request, checked against what OTLP/JSON requires.
std::vector<json> spans_of(const TestHttpServer& server) {
  const std::regex trace_id("^[0-9a-f]{32}$");
  const std::regex span_id("^[0-9a-f]{16}$");
  const std::regex decimal("^[0-9]+$");
  std::vector<json> spans;
  for (const auto& request : server.requests()) {
    EXPECT_EQ(request.path, "/v1/traces");
    EXPECT_EQ(request.content_type, "application/json");
    const json body = json::parse(request.body);
    const json& resource_spans = body.at("resourceSpans");
    EXPECT_EQ(resource_spans.size(), 1U);
    const json& resource = resource_spans[0].at("resource");
    bool named = false;
    for (const json& attribute : resource.at("attributes")) {
      if (attribute.at("key") == "service.name") {
        named = attribute.at("value").at("stringValue") == "order-worker";
      }
    }
    EXPECT_TRUE(named) << resource.dump();
    for (const json& scope_spans : resource_spans[0].at("scopeSpans")) {
      EXPECT_EQ(scope_spans.at("scope").at("name"), "prodsafe");
      for (const json& span : scope_spans.at("spans")) {
        EXPECT_TRUE(std::regex_match(span.at("traceId").get<std::string>(), trace_id));
        EXPECT_TRUE(std::regex_match(span.at("spanId").get<std::string>(), span_id));
        if (span.contains("parentSpanId")) {
          EXPECT_TRUE(std::regex_match(span.at("parentSpanId").get<std::string>(), span_id));
        }
        EXPECT_FALSE(span.at("name").get<std::string>().empty());
        const int kind = span.at("kind").get<int>();
        EXPECT_TRUE(kind >= 1 && kind <= 5);
        const auto start = span.at("startTimeUnixNano").get<std::string>();
        const auto end = span.at("endTimeUnixNano").get<std::string>();
        EXPECT_TRUE(std::regex_match(start, decimal));
        EXPECT_TRUE(std::regex_match(end, decimal));
        EXPECT_LE(std::stoll(start), std::stoll(end));
        spans.push_back(span);
      }
    }
  }
  return spans;
}

const json* find_span(const std::vector<json>& spans, std::string_view name) {
  for (const json& span : spans) {
    if (span.at("name") == name) return &span;
  }
  return nullptr;
}

std::string attribute(const json& span, std::string_view key, std::string_view type) {
  for (const json& item : span.at("attributes")) {
    if (item.at("key") == key) return item.at("value").at(std::string(type)).dump();
  }
  return "<missing>";
}

TEST(OtlpExporterTest, DeliversASpanTreeAsOtlpJson) {
  TestHttpServer server;
  metrics::Registry registry;
  auto exporter = std::make_shared<OtlpHttpExporter>(options_for(server, registry));
  Tracer tracer(exporter);
  {
    Span root = tracer.start_span("execute_once");
    root.set_attribute("prodsafe.effect.type", "ORDER_PLACEMENT")
        .set_attribute("prodsafe.fencing_token", std::uint64_t{42})
        .set_attribute("prodsafe.recovering", false)
        .set_attribute("ratio", 0.5);
    Span claim = tracer.start_span("claim", &root.context(), SpanKind::kClient);
    claim.add_event("lease.renewed", {{"attempt", std::int64_t{1}}});
    claim.end();
    Span effect = tracer.start_span("effect", &root.context());
    effect.set_error("exchange refused");
  }
  ASSERT_TRUE(exporter->flush(5s));
  const auto spans = spans_of(server);
  ASSERT_EQ(spans.size(), 3U);
  const json* root = find_span(spans, "execute_once");
  const json* claim = find_span(spans, "claim");
  const json* effect = find_span(spans, "effect");
  ASSERT_TRUE(root && claim && effect);
  EXPECT_FALSE(root->contains("parentSpanId"));
  EXPECT_EQ(claim->at("traceId"), root->at("traceId"));
  EXPECT_EQ(effect->at("traceId"), root->at("traceId"));
  EXPECT_EQ(claim->at("parentSpanId"), root->at("spanId"));
  EXPECT_EQ(effect->at("parentSpanId"), root->at("spanId"));
  EXPECT_EQ(claim->at("kind"), 3);
  EXPECT_EQ(root->at("kind"), 1);
  EXPECT_EQ(attribute(*root, "prodsafe.effect.type", "stringValue"), "\"ORDER_PLACEMENT\"");
  EXPECT_EQ(attribute(*root, "prodsafe.fencing_token", "intValue"), "\"42\"");
  EXPECT_EQ(attribute(*root, "prodsafe.recovering", "boolValue"), "false");
  EXPECT_EQ(attribute(*root, "ratio", "doubleValue"), "0.5");
  EXPECT_EQ(claim->at("events")[0].at("name"), "lease.renewed");
  EXPECT_EQ(attribute(claim->at("events")[0], "attempt", "intValue"), "\"1\"");
  EXPECT_EQ(effect->at("status").at("code"), 2);
  EXPECT_EQ(effect->at("status").at("message"), "exchange refused");
  EXPECT_FALSE(root->contains("status"));
  EXPECT_EQ(exporter->queued(), 3U);
  EXPECT_EQ(exporter->dropped(), 0U);
}

TEST(OtlpExporterTest, SendsInBatchesOfMaxBatch) {
  TestHttpServer server;
  metrics::Registry registry;
  OtlpOptions options = options_for(server, registry);
  options.max_batch = 3;
  options.flush_interval = std::chrono::hours(1);
  auto exporter = std::make_shared<OtlpHttpExporter>(options);
  Tracer tracer(exporter);
  for (int i = 0; i < 7; ++i) tracer.start_span("s" + std::to_string(i)).end();
  // Two full batches go without a flush; the seventh span waits for one.
  ASSERT_TRUE(server.wait_for_requests(2));
  ASSERT_TRUE(exporter->flush(5s));
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3U);
  std::vector<std::size_t> sizes;
  for (const auto& request : requests) {
    sizes.push_back(json::parse(request.body)["resourceSpans"][0]["scopeSpans"][0]["spans"].size());
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 1}));
}

TEST(OtlpExporterTest, ASpanWaitsAtMostTheFlushInterval) {
  TestHttpServer server;
  metrics::Registry registry;
  OtlpOptions options = options_for(server, registry);
  options.flush_interval = 50ms;
  auto exporter = std::make_shared<OtlpHttpExporter>(options);
  Tracer tracer(exporter);
  tracer.start_span("alone").end();
  EXPECT_TRUE(server.wait_for_requests(1, 5s));
}

TEST(OtlpExporterTest, AFullQueueDropsAndCountsWithoutBlocking) {
  TestHttpServer server([](std::size_t) { return Reply{.status = 200, .hold = true}; });
  metrics::Registry registry;
  OtlpOptions options = options_for(server, registry);
  options.queue_capacity = 10;
  options.max_batch = 5;
  options.delivery.queue_capacity = 1;
  options.delivery.drain_timeout = 0ms;
  auto exporter = std::make_shared<OtlpHttpExporter>(options);
  Tracer tracer(exporter);
  // The collector holds its answer: one batch in flight, one queued at the
  // dispatcher, then the span queue fills. Ending spans must still return.
  std::atomic<bool> finished{false};
  std::thread caller([&] {
    for (int i = 0; i < 1000; ++i) tracer.start_span("busy").end();
    finished = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!finished && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(finished.load()) << "export_span blocked behind a slow collector";
  caller.join();
  // Refused at the span queue (never queued) or with their batch at the
  // dispatcher's (queued, then dropped).
  EXPECT_LT(exporter->queued(), 1000U);
  EXPECT_GE(exporter->dropped(), 1000U - exporter->queued());
  const auto text = metrics::to_prometheus_text(registry.collect());
  EXPECT_NE(text.find("prodsafe_tracing_spans_total{outcome=\"dropped\"}"), std::string::npos)
      << text;
  server.release();
}

TEST(OtlpExporterTest, InvalidUtf8IsReplacedNotThrown) {
  TestHttpServer server;
  metrics::Registry registry;
  auto exporter = std::make_shared<OtlpHttpExporter>(options_for(server, registry));
  Tracer tracer(exporter);
  tracer.start_span("bad \xff name").set_attribute("prodsafe.key", "effect:\xfe\xff").end();
  ASSERT_TRUE(exporter->flush(5s));
  const auto spans = spans_of(server);
  ASSERT_EQ(spans.size(), 1U);
  EXPECT_NE(spans[0].at("name").get<std::string>().find("bad"), std::string::npos);
}

TEST(OtlpExporterTest, TheDestructorSendsWhatIsQueued) {
  TestHttpServer server;
  metrics::Registry registry;
  OtlpOptions options = options_for(server, registry);
  options.flush_interval = std::chrono::hours(1);
  {
    auto exporter = std::make_shared<OtlpHttpExporter>(options);
    Tracer tracer(exporter);
    tracer.start_span("last words").end();
  }
  EXPECT_TRUE(server.wait_for_requests(1, 5s));
}

TEST(OtlpExporterTest, AnUnreachableCollectorIsCountedNotThrown) {
  metrics::Registry registry;
  OtlpOptions options;
  options.endpoint = "http://127.0.0.1:1/v1/traces";  // nothing listens on port 1
  options.delivery.metrics = &registry;
  options.delivery.max_attempts = 1;
  options.delivery.timeout = 500ms;
  auto exporter = std::make_shared<OtlpHttpExporter>(options);
  Tracer tracer(exporter);
  tracer.start_span("lost").end();
  EXPECT_TRUE(exporter->flush(5s));
  EXPECT_EQ(exporter->dispatcher().failed(), 1U);
}

TEST(OtlpExporterTest, BadOptionsAreRefusedByName) {
  const auto refused = [](OtlpOptions options, std::string_view field) {
    try {
      OtlpHttpExporter exporter(std::move(options));
      ADD_FAILURE() << "accepted bad " << field;
    } catch (const InvalidArgument& error) {
      EXPECT_NE(std::string(error.what()).find(field), std::string::npos) << error.what();
    }
  };
  OtlpOptions options;
  options.endpoint = "ftp://collector/v1/traces";
  refused(options, "endpoint");
  options = {};
  options.endpoint = "not a url";
  refused(options, "endpoint");
  options = {};
  options.service_name = "";
  refused(options, "service_name");
  options = {};
  options.queue_capacity = 0;
  refused(options, "queue_capacity");
  options = {};
  options.max_batch = 0;
  refused(options, "max_batch");
  options = {};
  options.flush_interval = 0ms;
  refused(options, "flush_interval");
}

}  // namespace
}  // namespace prodsafe::tracing
