// Commands, typed replies and pipelines against a real redis-server.
#include "prodsafe/redis/client.hpp"

#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "support/redis_fixture.hpp"

namespace prodsafe::redis {
namespace {

using namespace std::chrono_literals;
using ClientTest = prodsafe::testing::RedisTest;

TEST_F(ClientTest, StringCommandsRoundTrip) {
  auto client = make_client();
  EXPECT_EQ(client->ping(), "PONG");
  EXPECT_EQ(client->get("missing"), std::nullopt);
  client->set("k", "v");
  EXPECT_EQ(client->get("k"), "v");
  EXPECT_EQ(client->incr("n"), 1);
  EXPECT_EQ(client->incr("n"), 2);
  EXPECT_EQ(client->del("k"), 1);
  EXPECT_EQ(client->del("k"), 0);
}

TEST_F(ClientTest, SetWithTtlExpires) {
  auto client = make_client();
  client->set("short", "v", 60s);
  const long long ttl = client->command({"PTTL", "short"}).integer();
  EXPECT_GT(ttl, 59000);
  EXPECT_LE(ttl, 60000);
  EXPECT_THROW(client->set("k", "v", -1ms), InvalidArgument);
}

TEST_F(ClientTest, BinaryValuesSurvive) {
  auto client = make_client();
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  client->set("bin", binary);
  EXPECT_EQ(client->get("bin"), binary);
}

TEST_F(ClientTest, ArraysAndIntegersAreTyped) {
  auto client = make_client();
  client->command({"HSET", "h", "a", "1", "b", "2"});
  const Reply all = client->command({"HGETALL", "h"});
  ASSERT_EQ(all.type(), Reply::Type::kArray);
  ASSERT_EQ(all.array().size(), 4u);
  EXPECT_EQ(all.array()[0].str(), "a");
  EXPECT_EQ(client->command({"HLEN", "h"}).integer(), 2);
  EXPECT_TRUE(client->command({"HGET", "h", "zz"}).is_nil());
}

TEST_F(ClientTest, ErrorRepliesThrowReplyErrorWithServerMessage) {
  auto client = make_client();
  client->command({"HSET", "h", "a", "1"});
  try {
    client->get("h");
    FAIL() << "no exception";
  } catch (const ReplyError& error) {
    EXPECT_EQ(error.prefix(), "WRONGTYPE");
    EXPECT_NE(std::string(error.what()).find("GET on redis://127.0.0.1:"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW(client->command({"NOSUCHCOMMAND"}), ReplyError);
  // The connection stays usable after an error reply.
  EXPECT_EQ(client->ping(), "PONG");
}

TEST_F(ClientTest, WrongReplyTypeIsAProtocolError) {
  auto client = make_client();
  client->set("k", "not a number");
  EXPECT_THROW((void)client->command({"GET", "k"}).integer(), ProtocolError);
}

TEST_F(ClientTest, PipelineReturnsRepliesInOrderWithErrorsInPlace) {
  auto client = make_client();
  client->command({"HSET", "h", "a", "1"});
  Pipeline pipeline;
  pipeline.add({"SET", "k", "v"}).add({"INCR", "h"}).add({"GET", "k"}).add({"INCR", "n"});
  const std::vector<Reply> replies = client->pipeline(pipeline);
  ASSERT_EQ(replies.size(), 4u);
  EXPECT_EQ(replies[0].str(), "OK");
  EXPECT_TRUE(replies[1].is_error());
  EXPECT_EQ(replies[1].error_message().substr(0, 9), "WRONGTYPE");
  EXPECT_EQ(replies[2].str(), "v");
  EXPECT_EQ(replies[3].integer(), 1);
  EXPECT_TRUE(client->pipeline(Pipeline{}).empty());
}

TEST_F(ClientTest, LargePipelineUsesOneConnection) {
  auto client = make_client();
  Pipeline pipeline;
  for (int i = 0; i < 10000; ++i) pipeline.add({"RPUSH", "list", std::to_string(i)});
  const auto replies = client->pipeline(pipeline);
  ASSERT_EQ(replies.size(), 10000u);
  EXPECT_EQ(replies.back().integer(), 10000);
  EXPECT_EQ(client->pool().stats().created, 1u);
  EXPECT_EQ(client->command({"LINDEX", "list", "9999"}).str(), "9999");
}

TEST_F(ClientTest, KeyPrefixSeparatesTenants) {
  Options options = short_timeouts();
  options.key_prefix = "tenant-a:";
  auto client = make_client(options);
  EXPECT_EQ(client->key("effect:X:1"), "tenant-a:effect:X:1");
  client->set(client->key("k"), "a");
  EXPECT_EQ(make_client()->get("tenant-a:k"), "a");
}

TEST_F(ClientTest, ServerTimeIsNearTheLocalClock) {
  auto client = make_client();
  const long long server_us = client->server_time_us();
  const long long local_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  EXPECT_LT(std::llabs(server_us - local_us), 5'000'000);
}

TEST_F(ClientTest, UrlDatabaseIsSelected) {
  Client db2(server().url() + "/2", short_timeouts());
  db2.set("where", "db2");
  EXPECT_EQ(db2.get("where"), "db2");
  EXPECT_EQ(make_client()->get("where"), std::nullopt);
}

TEST_F(ClientTest, SelectingAMissingDatabaseSaysWhy) {
  Client db99(server().url() + "/99", short_timeouts());
  try {
    db99.ping();
    FAIL() << "no exception";
  } catch (const ReplyError& error) {
    EXPECT_NE(std::string(error.what()).find("SELECT 99"), std::string::npos) << error.what();
  }
}

TEST_F(ClientTest, EightThreadsTenThousandCommandsEachExactCounts) {
  Options options = short_timeouts();
  options.pool_size = 8;
  options.command_timeout = 5s;
  auto client = make_client(options);
  constexpr int kThreads = 8;
  constexpr int kCommands = 10000;
  std::vector<std::thread> threads;
  std::vector<int> out_of_order(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string own = "own:" + std::to_string(t);
      long long last_shared = 0;
      for (int i = 0; i < kCommands / 2; ++i) {
        const long long shared = client->incr("shared");
        if (shared <= last_shared) ++out_of_order[t];
        last_shared = shared;
        if (client->incr(own) != i + 1) ++out_of_order[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(client->get("shared"), std::to_string(kThreads * kCommands / 2));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(out_of_order[t], 0) << "thread " << t << " saw replies out of order";
    EXPECT_EQ(client->get("own:" + std::to_string(t)), std::to_string(kCommands / 2));
  }
  EXPECT_LE(client->pool().stats().created, 8u);
}

TEST(ClientUnixSocketTest, ConnectsOverUnixSocket) {
  embedded::RedisServer server({.unix_socket = true});
  Client client(server.unix_url() + "?db=1");
  client.set("k", "via unix");
  EXPECT_EQ(client.get("k"), "via unix");
  Client tcp(server.url() + "/1");
  EXPECT_EQ(tcp.get("k"), "via unix");
}

}  // namespace
}  // namespace prodsafe::redis
