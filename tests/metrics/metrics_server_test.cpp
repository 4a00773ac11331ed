// /metrics over real HTTP on loopback.
#include "prodsafe/metrics/metrics_server.hpp"

#include <httplib.h>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::metrics {
namespace {

TEST(MetricsServerTest, ServesTheRegistryAtMetrics) {
  Registry registry;
  auto& orders = registry.counter("prodsafe_orders_total", "Orders placed.", {"side"});
  orders.labels({"buy"}).inc(3);
  MetricsServer server(registry);
  EXPECT_EQ(server.url(), "http://127.0.0.1:" + std::to_string(server.port()) + "/metrics");

  httplib::Client client("127.0.0.1", server.port());
  auto response = client.Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(response->body.find("prodsafe_orders_total{side=\"buy\"} 3\n"), std::string::npos)
      << response->body;

  orders.labels({"sell"}).inc();  // a scrape sees the registry as it is now
  response = client.Get("/metrics");
  ASSERT_TRUE(response);
  EXPECT_NE(response->body.find("prodsafe_orders_total{side=\"sell\"} 1\n"), std::string::npos);
  EXPECT_EQ(client.Get("/other")->status, 404);
}

TEST(MetricsServerTest, AnAddressThatIsNotLocalIsAClearError) {
  Registry registry;
  // 203.0.113.1 is TEST-NET-3: never assigned to this machine, so bind() fails
  // (nothing is sent anywhere).
  try {
    MetricsServer server(registry, {.host = "203.0.113.1", .port = 9464});
    FAIL() << "bound an address that is not local";
  } catch (const StoreUnavailable& error) {
    EXPECT_NE(std::string(error.what()).find("203.0.113.1:9464"), std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace prodsafe::metrics
