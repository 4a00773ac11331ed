// ScenarioOptions::embedded_tls: the scenario's embedded redis-server listens
// on TLS only, and every client the context hands out (its own, the workers'
// specs, a client through the fault proxy) connects with rediss:// and the
// CA of the certificates made in the scenario's directory.
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "chaos/framework/scenario.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/redis/client.hpp"

namespace prodsafe::chaos {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

redis::Options quick(redis::TlsOptions tls = {}) {
  return {.connect_timeout = 1s, .command_timeout = 1s, .pool_size = 1, .tls = std::move(tls)};
}

class EmbeddedTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "prodsafe-embedded-tls-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
  }
  void TearDown() override { fs::remove_all(directory_); }

  fs::path directory_;
};

TEST_F(EmbeddedTlsTest, OneSwitchPutsTheServerAndEveryClientOnTls) {
  const ScenarioOptions options{.embedded_tls = true};
  std::ostringstream out;
  ScenarioContext context(options, {.name = "embedded_tls"}, directory_, 1, out);
  context.start_redis();
  const std::string url = context.redis_url();
  ASSERT_TRUE(url.starts_with("rediss://127.0.0.1:")) << url;
  const fs::path ca_file = directory_ / "certificates" / "ca.pem";
  EXPECT_TRUE(fs::exists(ca_file));

  const Trial trial = context.trial("main");
  EXPECT_EQ(context.client(trial)->ping(), "PONG");
  EXPECT_EQ(context.tls_for(url).ca_file, ca_file.string());

  // The server has no plain port.
  redis::Client plain(fmt::format("redis://127.0.0.1:{}", context.redis_server()->port()), quick());
  EXPECT_THROW((void)plain.ping(), Error);

  // Through the proxy: still TLS, the certificate checked against the server.
  context.start_proxy();
  const std::string proxied = context.proxied_url();
  EXPECT_TRUE(proxied.starts_with("rediss://127.0.0.1:")) << proxied;
  redis::Client through(proxied, quick(context.tls_for(proxied)));
  EXPECT_EQ(through.ping(), "PONG");
  const WorkerSpec spec = context.worker_spec(trial, "w1", proxied);
  EXPECT_EQ(spec.redis_url, proxied);
  EXPECT_EQ(spec.tls.ca_file, ca_file.string());
  EXPECT_EQ(spec.tls.sni, "127.0.0.1");

  // A restart (what kill_redis does) serves the same certificate.
  context.redis_server()->restart();
  redis::Client after(url, quick(context.tls_for(url)));
  EXPECT_EQ(after.ping(), "PONG");
}

TEST_F(EmbeddedTlsTest, AnExternalRedisTakesItsTlsFromRedisTls) {
  const ScenarioOptions options{.redis_url = "rediss://127.0.0.1:1", .embedded_tls = true};
  std::ostringstream out;
  EXPECT_THROW((void)run_scenarios(options, {}, out), InvalidArgument);
  EXPECT_EQ(out.str(), "") << "it ran something";
}

}  // namespace
}  // namespace prodsafe::chaos
