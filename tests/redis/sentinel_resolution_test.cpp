// How a redis-sentinel:// client treats sentinels that answer oddly, or not
// at all: hand-made sentinels (CannedRedisServer) in front of real
// redis-servers. The failovers are in sentinel_test.cpp, against real
// sentinels.
#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/redis/client.hpp"
#include "support/canned_redis_server.hpp"
#include "support/loopback_listener.hpp"

namespace prodsafe::redis {
namespace {

using namespace std::chrono_literals;
using testing::CannedRedisServer;

std::string address_reply(int port) {
  const std::string text = std::to_string(port);
  return "*2\r\n$9\r\n127.0.0.1\r\n$" + std::to_string(text.size()) + "\r\n" + text + "\r\n";
}

std::string url_of(std::initializer_list<int> ports, std::string_view master = "orders") {
  std::string url = "redis-sentinel://";
  for (const int port : ports) {
    if (url.back() != '/') url += ',';
    url += "127.0.0.1:" + std::to_string(port);
  }
  return url + "?master=" + std::string(master);
}

Options quick() {
  Options options;
  options.connect_timeout = 2s;
  options.command_timeout = 1s;
  options.reconnect_backoff_initial = 0ms;
  options.sentinel.watch_switch = false;  // the canned sentinels cannot SUBSCRIBE
  return options;
}

template <typename Error>
std::string failure_of(Client& client) {
  try {
    (void)client.ping();
  } catch (const Error& error) {
    return error.what();
  }
  ADD_FAILURE() << "no error of the expected class";
  return {};
}

TEST(SentinelResolutionTest, TheNamedMasterServesTheCommands) {
  embedded::RedisServer master;
  CannedRedisServer sentinel(address_reply(master.port()));
  Client client(url_of({sentinel.port()}), quick());
  client.set("k", "v");
  EXPECT_EQ(Client(master.url()).get("k"), "v");
}

TEST(SentinelResolutionTest, ANodeThatIsNotAMasterIsRefusedAndTheMessageSaysWhy) {
  embedded::RedisServer master;
  embedded::RedisServer replica(
      {.config = {"replicaof 127.0.0.1 " + std::to_string(master.port())}});
  CannedRedisServer sentinel(address_reply(replica.port()));
  Client client(url_of({sentinel.port()}), quick());
  const std::string message = failure_of<StoreUnavailable>(client);
  EXPECT_NE(message.find("role is slave"), std::string::npos) << message;
  EXPECT_NE(message.find("failover"), std::string::npos) << message;
}

TEST(SentinelResolutionTest, AMasterNameNoSentinelKnowsIsAConfigError) {
  CannedRedisServer first("$-1\r\n");
  CannedRedisServer second("$-1\r\n");
  Client client(url_of({first.port(), second.port()}, "nope"), quick());
  const std::string message = failure_of<ConfigError>(client);
  EXPECT_NE(message.find("no sentinel knows a master named 'nope'"), std::string::npos) << message;
  EXPECT_NE(message.find("SENTINEL MASTERS"), std::string::npos) << message;
}

TEST(SentinelResolutionTest, NoReachableSentinelIsStoreUnavailableNamingEach) {
  int closed_a = 0;
  int closed_b = 0;
  {
    testing::LoopbackListener a;
    testing::LoopbackListener b;
    closed_a = a.port();
    closed_b = b.port();
  }
  Client client(url_of({closed_a, closed_b}), quick());
  const auto started = std::chrono::steady_clock::now();
  const std::string message = failure_of<StoreUnavailable>(client);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_NE(message.find("none of the 2 sentinels could be reached"), std::string::npos) << message;
  EXPECT_NE(message.find(std::to_string(closed_a)), std::string::npos) << message;
  EXPECT_NE(message.find(std::to_string(closed_b)), std::string::npos) << message;
}

TEST(SentinelResolutionTest, AGarbledAnswerMovesOnToTheNextSentinel) {
  embedded::RedisServer master;
  CannedRedisServer garbled(":42\r\n");
  CannedRedisServer good(address_reply(master.port()));
  Client client(url_of({garbled.port(), good.port()}), quick());
  EXPECT_EQ(client.ping(), "PONG");
  // The sentinel that answered is asked first from now on.
  const int garbled_before = garbled.requests();
  (void)client.dedicated_connection();
  (void)client.dedicated_connection();
  EXPECT_EQ(garbled.requests(), garbled_before);
  EXPECT_EQ(good.requests(), 3);
}

TEST(SentinelResolutionTest, ASilentSentinelCostsAtMostTheSentinelTimeout) {
  embedded::RedisServer master;
  // Accepts connections and never answers.
  testing::LoopbackListener silent;
  CannedRedisServer good(address_reply(master.port()));
  Options options = quick();
  options.sentinel.timeout = 200ms;
  Client client(url_of({silent.port(), good.port()}), options);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(client.ping(), "PONG");
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 1s);
}

TEST(SentinelResolutionTest, TheWholeResolutionStaysWithinConnectTimeout) {
  testing::LoopbackListener silent_a;
  testing::LoopbackListener silent_b;
  testing::LoopbackListener silent_c;
  Options options = quick();
  options.connect_timeout = 300ms;
  options.sentinel.timeout = 250ms;
  Client client(url_of({silent_a.port(), silent_b.port(), silent_c.port()}), options);
  const auto started = std::chrono::steady_clock::now();
  const std::string message = failure_of<StoreUnavailable>(client);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 600ms);
  EXPECT_NE(message.find("none of the 3 sentinels could be reached"), std::string::npos) << message;
}

TEST(SentinelResolutionTest, ABareConnectionRefusesASentinelUrl) {
  try {
    Connection connection(parse_url("redis-sentinel://127.0.0.1:1?master=m"), Options{});
    ADD_FAILURE() << "accepted";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("use redis::Client"), std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace prodsafe::redis
