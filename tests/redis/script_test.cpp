// Lua scripts by EVALSHA, with transparent reload on NOSCRIPT.
#include "prodsafe/redis/script.hpp"

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "support/redis_fixture.hpp"

namespace prodsafe::redis {
namespace {

using ScriptTest = prodsafe::testing::RedisTest;

const Script& add_script() {
  static const Script script("add", "return redis.call('INCRBY', KEYS[1], ARGV[1])");
  return script;
}

bool cached(Client& client, const Script& script) {
  return client.command({"SCRIPT", "EXISTS", script.sha()}).array().at(0).integer() == 1;
}

TEST_F(ScriptTest, LocalShaMatchesTheServers) {
  auto client = make_client();
  EXPECT_EQ(client->command({"SCRIPT", "LOAD", add_script().source()}).str(), add_script().sha());
}

TEST_F(ScriptTest, RunsWithKeysAndArgs) {
  auto client = make_client();
  EXPECT_EQ(add_script().run(*client, {"counter"}, {"5"}).integer(), 5);
  EXPECT_EQ(add_script().run(*client, {"counter"}, {"7"}).integer(), 12);
  const Script echo("echo", "return {KEYS[1], ARGV[1], ARGV[2]}");
  const Reply reply = echo.run(*client, {"k"}, {"a", "b"});
  ASSERT_EQ(reply.array().size(), 3u);
  EXPECT_EQ(reply.array()[2].str(), "b");
}

TEST_F(ScriptTest, ReloadsAfterScriptFlush) {
  auto client = make_client();
  add_script().run(*client, {"counter"}, {"1"});
  client->command({"SCRIPT", "FLUSH"});
  ASSERT_FALSE(cached(*client, add_script()));
  EXPECT_EQ(add_script().run(*client, {"counter"}, {"1"}).integer(), 2);
  EXPECT_TRUE(cached(*client, add_script()));
}

TEST_F(ScriptTest, ReloadsAfterServerRestart) {
  auto client = make_client();
  EXPECT_EQ(add_script().run(*client, {"counter"}, {"1"}).integer(), 1);
  server().kill();
  server().restart();  // no persistence: the data and the script cache are gone
  EXPECT_EQ(add_script().run(*client, {"counter"}, {"1"}).integer(), 1);
}

TEST_F(ScriptTest, ScriptErrorsNameTheScript) {
  auto client = make_client();
  const Script broken("broken", "return redis.call('NOSUCHCOMMAND')");
  try {
    broken.run(*client, {}, {});
    FAIL() << "no exception";
  } catch (const ReplyError& error) {
    EXPECT_NE(std::string(error.what()).find("Lua script 'broken'"), std::string::npos)
        << error.what();
  }
  const Script refusing("refusing", "return redis.error_reply('CONFLICT fingerprint differs')");
  try {
    refusing.run(*client, {}, {});
    FAIL() << "no exception";
  } catch (const ReplyError& error) {
    EXPECT_EQ(error.prefix(), "CONFLICT");
  }
}

TEST_F(ScriptTest, SyntaxErrorIsAReplyError) {
  auto client = make_client();
  const Script bad("bad syntax", "return (");
  EXPECT_THROW(bad.run(*client, {}, {}), ReplyError);
}

}  // namespace
}  // namespace prodsafe::redis
