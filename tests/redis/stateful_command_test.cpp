// Commands that change the state of the connection they run on (MULTI,
// SELECT, SUBSCRIBE, CLIENT REPLY, ...) against a real redis-server: a Client
// with one pooled connection refuses them, so the next caller of that same
// connection still gets its own reply, in the URL's database, as the URL's
// user. Pipelines may hold a whole transaction; a dedicated connection does
// the rest.
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/client.hpp"
#include "support/redis_fixture.hpp"

namespace prodsafe::redis {
namespace {

using namespace std::chrono_literals;

class StatefulCommandTest : public prodsafe::testing::RedisTest {
 protected:
  // One pooled connection, so every call reuses the connection the refused
  // command would have run on.
  static std::unique_ptr<Client> one_connection(const std::string& url) {
    Options options = short_timeouts();
    options.pool_size = 1;
    return std::make_unique<Client>(url, options);
  }
  static std::unique_ptr<Client> one_connection() { return one_connection(server().url()); }

  // The InvalidArgument message when client.command(args) refused to send
  // `args`; empty when it sent them (whatever the server answered).
  static std::string refusal(Client& client, const std::vector<std::string>& args) {
    try {
      client.command(args);
    } catch (const InvalidArgument& error) {
      return error.what();
    } catch (const Error&) {
      // Sent: the server refused it, or the connection broke or timed out.
    }
    return {};
  }

  // The client's next commands get their own replies and act on `url`'s
  // database, as seen by a connection of another client.
  static void expect_clean(Client& client, const std::string& url, const std::string& key) {
    client.set(key, "written");
    EXPECT_EQ(client.get(key), "written");
    EXPECT_EQ(client.incr(key + ":n"), 1);
    EXPECT_EQ(client.ping(), "PONG");
    Client other(url, short_timeouts());
    EXPECT_EQ(other.get(key), "written") << "the write did not reach " << url;
  }
};

TEST_F(StatefulCommandTest, MultiIsRefusedAndLaterWritesHappen) {
  auto client = one_connection();
  const auto refused = refusal(*client, {"MULTI"});
  EXPECT_FALSE(refused.empty());
  EXPECT_NE(refused.find("MULTI"), std::string::npos) << refused;
  EXPECT_NE(refused.find("Client::pipeline"), std::string::npos) << refused;
  EXPECT_NE(refused.find("Client::dedicated_connection()"), std::string::npos) << refused;
  expect_clean(*client, server().url(), "after-multi");
}

TEST_F(StatefulCommandTest, SelectIsRefusedAndKeysStayInTheUrlDatabase) {
  const std::string url = server().url() + "/2";
  auto client = one_connection(url);
  const auto refused = refusal(*client, {"SELECT", "1"});
  EXPECT_FALSE(refused.empty());
  EXPECT_NE(refused.find("SELECT"), std::string::npos) << refused;
  EXPECT_NE(refused.find("/1"), std::string::npos) << "should point at the URL: " << refused;
  expect_clean(*client, url, "after-select");
  Client db1(server().url() + "/1", short_timeouts());
  EXPECT_EQ(db1.get("after-select"), std::nullopt);
}

TEST_F(StatefulCommandTest, SubscribeIsRefusedAndTheNextCommandGetsItsOwnReply) {
  auto client = one_connection();
  for (const char* command : {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"}) {
    const auto refused = refusal(*client, {command, "news"});
    EXPECT_FALSE(refused.empty()) << command;
    EXPECT_NE(refused.find(command), std::string::npos) << refused;
    EXPECT_NE(refused.find("Connection::subscribe()"), std::string::npos) << refused;
    expect_clean(*client, server().url(), std::string("after-") + command);
  }
}

TEST_F(StatefulCommandTest, UnsubscribeWithSeveralChannelsIsRefused) {
  // Outside pub/sub mode, UNSUBSCRIBE still answers once per channel: two
  // replies to one command, the second of which the next caller would read.
  auto client = one_connection();
  EXPECT_FALSE(refusal(*client, {"UNSUBSCRIBE", "a", "b"}).empty());
  EXPECT_FALSE(refusal(*client, {"PUNSUBSCRIBE", "a*", "b*"}).empty());
  EXPECT_FALSE(refusal(*client, {"SUNSUBSCRIBE", "a", "b"}).empty());
  expect_clean(*client, server().url(), "after-unsubscribe");
}

TEST_F(StatefulCommandTest, ClientReplyOffAndSkipAreRefusedWithoutWaiting) {
  auto client = one_connection();
  const auto start = std::chrono::steady_clock::now();
  for (const char* mode : {"OFF", "SKIP", "ON"}) {
    const auto refused = refusal(*client, {"client", "reply", mode});
    EXPECT_FALSE(refused.empty()) << mode;
    EXPECT_NE(refused.find("CLIENT REPLY"), std::string::npos) << refused;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 250ms) << "a refusal must not wait";
  expect_clean(*client, server().url(), "after-client-reply");
  EXPECT_EQ(client->pool().stats().dropped, 0u);
}

TEST_F(StatefulCommandTest, ResetIsRefusedAndTheUrlDatabaseStays) {
  const std::string url = server().url() + "/3";
  auto client = one_connection(url);
  const auto refused = refusal(*client, {"RESET"});
  EXPECT_FALSE(refused.empty());
  EXPECT_NE(refused.find("RESET"), std::string::npos) << refused;
  expect_clean(*client, url, "after-reset");
}

TEST_F(StatefulCommandTest, HelloIsRefusedSoTheConnectionStaysOnResp2) {
  auto client = one_connection();
  for (const std::vector<std::string>& hello :
       {std::vector<std::string>{"HELLO", "3"}, std::vector<std::string>{"HELLO"}}) {
    const auto refused = refusal(*client, hello);
    EXPECT_FALSE(refused.empty());
    EXPECT_NE(refused.find("HELLO"), std::string::npos) << refused;
    EXPECT_NE(refused.find("URL"), std::string::npos) << refused;
  }
  expect_clean(*client, server().url(), "after-hello");
  EXPECT_EQ(client->pool().stats().dropped, 0u);
}

TEST_F(StatefulCommandTest, AuthIsRefusedAndTheConnectionKeepsTheUrlUser) {
  make_client()->command(
      {"ACL", "SETUSER", "reader", "reset", "on", ">readerpw", "~*", "+get", "+ping"});
  auto client = one_connection();
  const auto refused = refusal(*client, {"AUTH", "reader", "readerpw"});
  EXPECT_FALSE(refused.empty());
  EXPECT_NE(refused.find("AUTH"), std::string::npos) << refused;
  EXPECT_NE(refused.find("URL"), std::string::npos) << refused;
  EXPECT_EQ(refused.find("readerpw"), std::string::npos) << "the password leaked: " << refused;
  expect_clean(*client, server().url(), "after-auth");
  make_client()->command({"ACL", "DELUSER", "reader"});
}

TEST_F(StatefulCommandTest, WatchIsRefusedSoAnotherCallersTransactionRuns) {
  auto client = one_connection();
  const auto refused = refusal(*client, {"WATCH", "watched"});
  EXPECT_FALSE(refused.empty());
  EXPECT_NE(refused.find("WATCH"), std::string::npos) << refused;
  make_client()->set("watched", "changed by someone else");
  Pipeline transaction;
  transaction.add({"MULTI"}).add({"SET", "t", "1"}).add({"EXEC"});
  const std::vector<Reply> replies = client->pipeline(transaction);
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_FALSE(replies[2].is_nil()) << "EXEC aborted by another caller's WATCH";
  EXPECT_EQ(client->get("t"), "1");
}

TEST_F(StatefulCommandTest, MonitorIsRefused) {
  auto client = one_connection();
  EXPECT_FALSE(refusal(*client, {"MONITOR"}).empty());
  auto other = make_client();
  other->set("noise", "1");
  expect_clean(*client, server().url(), "after-monitor");
}

TEST_F(StatefulCommandTest, QuitIsRefusedAndTheConnectionStaysOpen) {
  auto client = one_connection();
  EXPECT_FALSE(refusal(*client, {"QUIT"}).empty());
  expect_clean(*client, server().url(), "after-quit");
  EXPECT_EQ(client->pool().stats().created, 1u);
}

TEST_F(StatefulCommandTest, ClientTrackingIsRefused) {
  auto client = one_connection();
  EXPECT_FALSE(refusal(*client, {"CLIENT", "TRACKING", "on"}).empty());
  EXPECT_FALSE(refusal(*client, {"CLIENT", "CACHING", "yes"}).empty());
  EXPECT_FALSE(refusal(*client, {"CLIENT", "NO-TOUCH", "on"}).empty());
  expect_clean(*client, server().url(), "after-tracking");
  make_client()->set("after-tracking", "changed");
  EXPECT_EQ(client->get("after-tracking"), "changed");
}

TEST_F(StatefulCommandTest, ReplicationStreamsAreRefused) {
  auto client = one_connection();
  EXPECT_FALSE(refusal(*client, {"SYNC"}).empty());
  EXPECT_FALSE(refusal(*client, {"PSYNC", "?", "-1"}).empty());
  EXPECT_FALSE(refusal(*client, {"REPLCONF", "listening-port", "1"}).empty());
  expect_clean(*client, server().url(), "after-sync");
  EXPECT_EQ(client->pool().stats().created, 1u);
}

TEST_F(StatefulCommandTest, EveryConnectionStateCommandIsRefusedBeforeSending) {
  auto client = one_connection();
  const std::vector<std::vector<std::string>> refused_commands = {{"MULTI"},
                                                                  {"exec"},
                                                                  {"Discard"},
                                                                  {"WATCH", "k"},
                                                                  {"SELECT", "0"},
                                                                  {"SUBSCRIBE"},
                                                                  {"psubscribe", "*"},
                                                                  {"ssubscribe", "c"},
                                                                  {"UNSUBSCRIBE"},
                                                                  {"PUNSUBSCRIBE"},
                                                                  {"SUNSUBSCRIBE"},
                                                                  {"CLIENT", "REPLY", "ON"},
                                                                  {"RESET"},
                                                                  {"HELLO", "2"},
                                                                  {"AUTH", "pw"},
                                                                  {"MONITOR"},
                                                                  {"READONLY"},
                                                                  {"READWRITE"},
                                                                  {"ASKING"},
                                                                  {"QUIT"},
                                                                  {"CLIENT", "TRACKING", "off"},
                                                                  {"SYNC"},
                                                                  {"PSYNC", "?", "-1"},
                                                                  {"REPLCONF", "ack", "0"}};
  client->command({"CONFIG", "RESETSTAT"});
  for (const auto& args : refused_commands) {
    const auto refused = refusal(*client, args);
    EXPECT_FALSE(refused.empty()) << args.front() << " was sent";
  }
  // None of them reached the server.
  const std::string stats = client->command({"INFO", "commandstats"}).str();
  for (const char* name : {"cmdstat_multi", "cmdstat_select", "cmdstat_readonly", "cmdstat_asking",
                           "cmdstat_exec", "cmdstat_auth"}) {
    EXPECT_EQ(stats.find(name), std::string::npos) << name << " reached the server";
  }
  EXPECT_NE(stats.find("cmdstat_config"), std::string::npos) << stats;
}

TEST_F(StatefulCommandTest, RefusedThroughEveryOverload) {
  auto client = one_connection();
  EXPECT_THROW(client->command({"multi"}), InvalidArgument);
  const std::vector<std::string_view> views = {"Select", "4"};
  EXPECT_THROW(client->command(std::span<const std::string_view>(views)), InvalidArgument);
  EXPECT_THROW(client->command(std::vector<std::string>{"CLIENT", "reply", "off"}),
               InvalidArgument);
}

TEST_F(StatefulCommandTest, CommandsThatLeaveTheConnectionAloneStillRun) {
  auto client = one_connection();
  EXPECT_GT(client->command({"CLIENT", "ID"}).integer(), 0);
  EXPECT_EQ(client->command({"CLIENT", "SETNAME", "stateful-test"}).str(), "OK");
  EXPECT_EQ(client->command({"UNWATCH"}).str(), "OK");
  EXPECT_EQ(client->command({"PUBLISH", "news", "hello"}).integer(), 0);
  EXPECT_THROW(client->command({"SELECTX"}), ReplyError);
  EXPECT_THROW(client->command({"CLIENT"}), ReplyError);
  expect_clean(*client, server().url(), "after-allowed");
}

TEST_F(StatefulCommandTest, PipelinedTransactionRuns) {
  auto client = one_connection();
  Pipeline transaction;
  transaction.add({"MULTI"}).add({"SET", "a", "1"}).add({"INCR", "b"}).add({"EXEC"});
  const std::vector<Reply> replies = client->pipeline(transaction);
  ASSERT_EQ(replies.size(), 4u);
  EXPECT_EQ(replies[1].str(), "QUEUED");
  ASSERT_EQ(replies[3].array().size(), 2u);
  EXPECT_EQ(replies[3].array()[1].integer(), 1);
  Pipeline watched;
  watched.add({"WATCH", "a"}).add({"MULTI"}).add({"INCR", "a"}).add({"exec"});
  EXPECT_EQ(client->pipeline(watched)[3].array()[0].integer(), 2);
  Pipeline discarded;
  discarded.add({"watch", "a"}).add({"MULTI"}).add({"INCR", "a"}).add({"DISCARD"});
  EXPECT_EQ(client->pipeline(discarded)[3].str(), "OK");
  expect_clean(*client, server().url(), "after-transaction");
  EXPECT_EQ(client->get("a"), "2");
}

// A DISCARD or UNWATCH the server refuses (here: a wrong argument count; an
// ACL can refuse them too) ends nothing: the connection must not go back to
// the pool inside the transaction, or with the watch.
TEST_F(StatefulCommandTest, APipelineWhoseDiscardIsRefusedLeavesNoTransactionOpen) {
  auto client = one_connection();
  Pipeline pipeline;
  pipeline.add({"MULTI"}).add({"SET", "pk", "v"}).add({"DISCARD", "junk"});
  EXPECT_TRUE(client->pipeline(pipeline)[2].is_error());
  expect_clean(*client, server().url(), "after-refused-discard");
}

TEST_F(StatefulCommandTest, APipelineWhoseUnwatchIsRefusedLeavesNoWatch) {
  auto client = one_connection();
  Pipeline pipeline;
  pipeline.add({"WATCH", "w"}).add({"UNWATCH", "junk"});
  EXPECT_TRUE(client->pipeline(pipeline)[1].is_error());
  Client(server().url(), short_timeouts()).set("w", "changed");
  Pipeline transaction;
  transaction.add({"MULTI"}).add({"SET", "t", "1"}).add({"EXEC"});
  EXPECT_FALSE(client->pipeline(transaction)[2].is_nil()) << "the old WATCH aborted the EXEC";
  EXPECT_EQ(client->get("t"), "1");
}

TEST_F(StatefulCommandTest, PipelineLeavingATransactionOpenIsRefused) {
  auto client = one_connection();
  Pipeline open;
  open.add({"SET", "x", "1"}).add({"MULTI"}).add({"SET", "y", "1"});
  try {
    client->pipeline(open);
    ADD_FAILURE() << "the pipeline ran";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("MULTI"), std::string::npos) << error.what();
  }
  expect_clean(*client, server().url(), "after-open-multi");
  EXPECT_EQ(client->get("x"), std::nullopt) << "a refused pipeline must send nothing";
}

TEST_F(StatefulCommandTest, PipelineLeavingAWatchOpenIsRefused) {
  auto client = one_connection();
  Pipeline watch;
  watch.add({"WATCH", "watched"}).add({"GET", "watched"});
  EXPECT_THROW(client->pipeline(watch), InvalidArgument);
  make_client()->set("watched", "changed");
  Pipeline transaction;
  transaction.add({"MULTI"}).add({"SET", "t", "1"}).add({"EXEC"});
  EXPECT_FALSE(client->pipeline(transaction)[2].is_nil());
  EXPECT_EQ(client->get("t"), "1");
}

TEST_F(StatefulCommandTest, PipelineWithSelectIsRefusedEvenInsideATransaction) {
  auto client = one_connection();
  Pipeline select;
  select.add({"MULTI"}).add({"SELECT", "1"}).add({"EXEC"});
  EXPECT_THROW(client->pipeline(select), InvalidArgument);
  Pipeline subscribe;
  subscribe.add({"PING"}).add({"SUBSCRIBE", "news"});
  EXPECT_THROW(client->pipeline(subscribe), InvalidArgument);
  Pipeline reopened;
  reopened.add({"MULTI"}).add({"EXEC"}).add({"MULTI"});
  EXPECT_THROW(client->pipeline(reopened), InvalidArgument);
  expect_clean(*client, server().url(), "after-select-pipeline");
}

TEST_F(StatefulCommandTest, DedicatedConnectionRunsATransactionWithoutTouchingThePool) {
  const std::string url = server().url() + "/4";
  auto client = one_connection(url);
  client->set("before", "1");
  std::unique_ptr<Connection> own = client->dedicated_connection();
  EXPECT_EQ(own->command({"WATCH", "balance"}).str(), "OK");
  EXPECT_TRUE(own->command({"GET", "balance"}).is_nil());
  EXPECT_EQ(own->command({"MULTI"}).str(), "OK");
  EXPECT_EQ(own->command({"SET", "balance", "100"}).str(), "QUEUED");
  // Pooled calls meanwhile are neither queued nor in another database.
  expect_clean(*client, url, "during-transaction");
  EXPECT_EQ(client->get("balance"), std::nullopt);
  const Reply executed = own->command({"EXEC"});
  ASSERT_EQ(executed.type(), Reply::Type::kArray);
  EXPECT_EQ(client->get("balance"), "100") << "the dedicated connection is in the URL's database";
  const PoolStats stats = client->pool().stats();
  EXPECT_EQ(stats.created, 1u) << "the dedicated connection came from the pool";
  EXPECT_EQ(stats.open, 1u);
}

TEST_F(StatefulCommandTest, DedicatedConnectionSubscribesWhilePooledCallsPublish) {
  auto client = one_connection();
  std::unique_ptr<Connection> subscriber = client->dedicated_connection();
  const std::string_view channel = "news";
  subscriber->subscribe(std::span(&channel, 1));
  EXPECT_EQ(client->command({"PUBLISH", "news", "hello"}).integer(), 1);
  const std::optional<Reply> message = subscriber->next_message(2s);
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->array()[2].str(), "hello");
  expect_clean(*client, server().url(), "after-publish");
}

TEST_F(StatefulCommandTest, DedicatedConnectionUsesTheUrlCredentials) {
  make_client()->command({"ACL", "SETUSER", "owner", "reset", "on", ">ownerpw", "~*", "+@all"});
  const std::string url = "redis://owner:ownerpw@127.0.0.1:" + std::to_string(server().port());
  auto client = one_connection(url);
  EXPECT_EQ(client->dedicated_connection()->command({"ACL", "WHOAMI"}).str(), "owner");
  make_client()->command({"ACL", "DELUSER", "owner"});
  EXPECT_THROW((void)client->dedicated_connection(), ReplyError);
}

}  // namespace
}  // namespace prodsafe::redis
