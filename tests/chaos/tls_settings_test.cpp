// TLS settings reach every client of a chaos run: the worker spec carries
// them to the worker processes, and a connection through the fault proxy
// keeps TLS and checks the server's name, not the proxy's address.
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chaos/framework/scenario.hpp"
#include "chaos/worker/worker.hpp"

namespace prodsafe::chaos {
namespace {

TEST(ChaosTlsTest, AWorkerSpecCarriesTheTlsSettings) {
  WorkerSpec spec;
  spec.redis_url = "rediss://redis.example.com:6380";
  spec.tls = {.enabled = true,
              .ca_file = "/ca.pem",
              .ca_dir = "/cas",
              .cert_file = "/client.pem",
              .key_file = "/client.key",
              .sni = "redis.example.com",
              .verify_peer = false};
  const WorkerSpec again = nlohmann::json(spec).get<WorkerSpec>();
  EXPECT_TRUE(again.tls.enabled);
  EXPECT_EQ(again.tls.ca_file, "/ca.pem");
  EXPECT_EQ(again.tls.ca_dir, "/cas");
  EXPECT_EQ(again.tls.cert_file, "/client.pem");
  EXPECT_EQ(again.tls.key_file, "/client.key");
  EXPECT_EQ(again.tls.sni, "redis.example.com");
  EXPECT_FALSE(again.tls.verify_peer);

  const WorkerSpec without = nlohmann::json::object().get<WorkerSpec>();
  EXPECT_FALSE(without.tls.enabled);
  EXPECT_TRUE(without.tls.verify_peer);
}

TEST(ChaosTlsTest, TheProxyKeepsTlsAndTheServerName) {
  const ScenarioOptions options{.redis_url = "rediss://:pw@localhost:1/2",
                                .redis_tls = {.ca_file = "/ca.pem"}};
  std::ostringstream out;
  ScenarioContext context(options, {.name = "tls_settings"}, ::testing::TempDir(), 1, out);
  EXPECT_EQ(context.tls_for(context.redis_url()).sni, "");
  EXPECT_EQ(context.tls_for(context.redis_url()).ca_file, "/ca.pem");
  context.start_proxy();
  const std::string proxied = context.proxied_url();
  EXPECT_TRUE(proxied.starts_with("rediss://:pw@127.0.0.1:")) << proxied;
  EXPECT_TRUE(proxied.ends_with("/2")) << proxied;
  const redis::TlsOptions tls = context.tls_for(proxied);
  EXPECT_EQ(tls.sni, "localhost");
  EXPECT_EQ(tls.ca_file, "/ca.pem");
}

TEST(ChaosTlsTest, APlainRunHasNoTls) {
  const ScenarioOptions options{.redis_url = "redis://localhost:1"};
  std::ostringstream out;
  ScenarioContext context(options, {.name = "tls_settings"}, ::testing::TempDir(), 1, out);
  context.start_proxy();
  const std::string proxied = context.proxied_url();
  EXPECT_TRUE(proxied.starts_with("redis://127.0.0.1:")) << proxied;
  EXPECT_EQ(context.tls_for(proxied).sni, "");
}

}  // namespace
}  // namespace prodsafe::chaos
