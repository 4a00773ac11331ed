// redis::Client through real sentinels (embedded::SentinelTopology: a master,
// two replicas, three sentinels): the master found, a failover after SIGKILL
// and after SIGSTOP, scripts reloaded on the new master, +switch-master.
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/sentinel_topology.hpp"
#include "prodsafe/embedded/test_certificates.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/script.hpp"

namespace prodsafe::redis {
namespace {

using namespace std::chrono_literals;
using embedded::RedisServer;
using embedded::SentinelTopology;

Options quick() {
  Options options;
  options.connect_timeout = 1s;
  options.command_timeout = 500ms;
  options.reconnect_backoff_initial = 0ms;
  return options;
}

long long calls_of(const std::string& url, const std::string& name) {
  const std::string info = Client(url).info("commandstats");
  const std::string field = "cmdstat_" + name + ":calls=";
  const std::size_t at = info.find(field);
  return at == std::string::npos ? 0 : std::stoll(info.substr(at + field.size()));
}

// Calls `call` until it succeeds or `within` passes; how long that took.
template <typename Call>
std::optional<std::chrono::milliseconds> time_to_succeed(std::chrono::milliseconds within,
                                                         Call&& call) {
  const auto started = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - started < within) {
    try {
      call();
      return std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - started);
    } catch (const StoreUnavailable&) {
      std::this_thread::sleep_for(20ms);
    } catch (const ReplyError& error) {
      if (!error.retryable()) throw;
      std::this_thread::sleep_for(20ms);
    }
  }
  return std::nullopt;
}

TEST(SentinelClientTest, CommandsGoToTheMasterTheSentinelsName) {
  SentinelTopology topology;
  Client client(topology.url(), quick());
  client.set("k", "v");
  EXPECT_EQ(Client(topology.node_url(topology.master())).get("k"), "v");
  const auto own = client.dedicated_connection();
  EXPECT_EQ(own->endpoint().port, topology.master().port());
  EXPECT_NE(client.endpoint().redacted().find("redis-sentinel://"), std::string::npos);
}

TEST(SentinelClientTest, AfterTheMasterIsKilledTheClientReachesThePromotedReplica) {
  SentinelTopology topology;
  Client client(topology.url(), quick());
  const Script read("read", "return redis.call('GET', KEYS[1])");
  Pipeline replicated;
  replicated.add({"SET", "k", "before"}).add({"WAIT", "2", "2000"});
  ASSERT_EQ(client.pipeline(replicated)[1].integer(), 2);
  EXPECT_EQ(read.run(client, {"k"}, {}).str(), "before");

  RedisServer& old_master = topology.master();
  old_master.kill();
  const auto resumed = time_to_succeed(20s, [&] { client.set("k2", "after"); });
  ASSERT_TRUE(resumed.has_value()) << "no write succeeded within 20 s of the kill";
  std::cout << "writes resumed " << resumed->count() << " ms after SIGKILL of the master\n";
  RedisServer& new_master = topology.wait_for_failover(old_master, 10s);
  EXPECT_EQ(Client(topology.node_url(new_master)).get("k2"), "after");
  EXPECT_EQ(client.get("k"), "before");
  // The new master never saw the script: EVALSHA meets NOSCRIPT, and the
  // script is loaded again, once.
  EXPECT_EQ(read.run(client, {"k"}, {}).str(), "before");
  EXPECT_EQ(calls_of(topology.node_url(new_master), "eval"), 1);
  EXPECT_EQ(read.run(client, {"k"}, {}).str(), "before");
  EXPECT_EQ(calls_of(topology.node_url(new_master), "eval"), 1);

  // The old master comes back as a replica; the client keeps writing to the
  // new one.
  old_master.restart();
  topology.wait_until_replica_of(old_master, new_master, 30s);
  for (int i = 0; i < 20; ++i) client.set("k3", std::to_string(i));
  EXPECT_EQ(Client(topology.node_url(new_master)).get("k3"), "19");
}

TEST(SentinelClientTest, APausedMasterIsLeftForThePromotedReplica) {
  SentinelTopology topology;
  Options options = quick();
  options.sentinel.watch_switch = false;  // only timeouts and READONLY lead the way
  Client client(topology.url(), options);
  client.set("k", "before");
  // Connections in the pool, idle, to the master about to be paused.
  {
    auto a = client.pool().checkout();
    auto b = client.pool().checkout();
  }
  RedisServer& old_master = topology.master();
  old_master.pause();
  const auto resumed = time_to_succeed(20s, [&] { client.set("k", "after"); });
  ASSERT_TRUE(resumed.has_value()) << "no write succeeded within 20 s of SIGSTOP";
  std::cout << "writes resumed " << resumed->count() << " ms after SIGSTOP of the master\n";
  RedisServer& new_master = topology.wait_for_failover(old_master, 10s);
  // The old master wakes up, is told it is a replica now: every write still
  // reaches the new master (an idle connection to the old one answers
  // READONLY once, and the pool drops them all).
  old_master.resume();
  topology.wait_until_replica_of(old_master, new_master, 30s);
  int readonly = 0;
  for (int i = 0; i < 50; ++i) {
    try {
      client.set("k", std::to_string(i));
    } catch (const ReplyError& error) {
      EXPECT_EQ(error.prefix(), "READONLY");
      ++readonly;
    }
  }
  EXPECT_LE(readonly, 1);
  EXPECT_EQ(Client(topology.node_url(new_master)).get("k"), "49");
}

TEST(SentinelClientTest, SwitchMasterDropsIdleConnectionsBeforeAnyoneMeetsTheOldMaster) {
  SentinelTopology topology;
  Client client(topology.url(), quick());
  {
    auto a = client.pool().checkout();
    auto b = client.pool().checkout();
    auto c = client.pool().checkout();
  }
  ASSERT_EQ(client.stats().idle, 3u);
  topology.master().pause();
  RedisServer& old_master = topology.master();
  (void)topology.wait_for_failover(old_master, 20s);
  // No command was sent: only the +switch-master announcement can have
  // dropped them.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (client.stats().idle != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(client.stats().idle, 0u);
  EXPECT_GE(client.stats().dropped, 3u);
  old_master.resume();
}

TEST(SentinelClientTest, SentinelCredentialsAreSeparateFromTheMasters) {
  SentinelTopology topology({.password = "data-secret", .sentinel_password = "sentinel-secret"});
  Options options = quick();
  options.password = "data-secret";
  {
    Client without(topology.url(), options);
    try {
      (void)without.ping();
      ADD_FAILURE() << "no error";
    } catch (const StoreUnavailable& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find("Options::sentinel.user and .password"), std::string::npos) << message;
      EXPECT_EQ(message.find("secret"), std::string::npos) << message;
    }
  }
  options.sentinel.password = "sentinel-secret";
  Client client(topology.url(), options);
  EXPECT_EQ(client.ping(), "PONG");
}

// rediss-sentinel://: the client asks the sentinels over TLS, and reaches the
// master they name over TLS too (both TLS only, here: the sentinel keeps a
// plain port only so that embedded::RedisServer can see it is up).
TEST(SentinelClientTest, RedissSentinelSpeaksTlsToTheSentinelsAndTheMaster) {
  std::string directory =
      (std::filesystem::temp_directory_path() / "prodsafe-sentinel-tls-XXXXXX").string();
  ASSERT_NE(::mkdtemp(directory.data()), nullptr);
  const embedded::TestCertificates certs =
      embedded::make_test_certificates(std::filesystem::path(directory) / "certificates");
  {
    const embedded::RedisServerTls tls_only{
        .cert_file = certs.server_cert, .key_file = certs.server_key, .ca_file = certs.ca_cert};
    RedisServer master({.tls = tls_only});
    embedded::RedisServerTls both = tls_only;
    both.tls_only = false;
    RedisServer sentinel(
        {.config = {"sentinel monitor prodsafe 127.0.0.1 " + std::to_string(master.port()) + " 1",
                    "tls-replication yes"},
         .tls = both,
         .sentinel = true});
    Options options = quick();
    options.tls.ca_file = certs.ca_cert.string();
    Client client(
        "rediss-sentinel://127.0.0.1:" + std::to_string(sentinel.tls_port()) + "?master=prodsafe",
        options);
    client.set("tls-sentinel", "v");
    EXPECT_EQ(client.get("tls-sentinel"), "v");
    // Without the CA the sentinel's certificate is refused, and the error says so.
    Options no_ca = quick();
    no_ca.connect_timeout = 2s;
    try {
      (void)Client(
          "rediss-sentinel://127.0.0.1:" + std::to_string(sentinel.tls_port()) + "?master=prodsafe",
          no_ca)
          .ping();
      ADD_FAILURE() << "no error";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find("certificate"), std::string::npos) << error.what();
    }
  }
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace prodsafe::redis
