// key_slot() and command_keys() against a real cluster-enabled redis-server:
// CLUSTER KEYSLOT for random and edge-case keys, COMMAND GETKEYS for a sample
// of every command command_keys() knows. A single node with no slots answers
// both.
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "command_keys.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/slot.hpp"
#include "redis/cluster_node.hpp"

namespace prodsafe::redis {
namespace {

using prodsafe::testing::cluster_test_options;
using prodsafe::testing::start_cluster_node;

std::vector<std::string> edge_case_keys() {
  std::vector<std::string> keys = {
      "",
      "{",
      "}",
      "{}",
      "}{",
      "{}{}",
      "{{}}",
      "{a}",
      "{a",
      "a}",
      "a{b}",
      "a{b}c{d}",
      "foo{}{bar}",
      "foo{{bar}}zap",
      "foo{bar}{zap}",
      "{user1000}.following",
      "{user1000}.followers",
      "123456789",
      "somekey",
      "foo{hash_tag}",
      "foo",
      "{ }",
      "x{}y{z}",
      "effect:order:{42}:claim",
      "}{a}{",
      "{{{a}}}",
      "a{}}",
  };
  keys.push_back(std::string("\0{\0}\0", 5));
  keys.push_back(std::string(10000, '{'));
  keys.push_back("{" + std::string(5000, 'x') + "}tail");
  for (int b = 0; b < 256; ++b) keys.emplace_back(1, static_cast<char>(b));
  return keys;
}

std::vector<std::string> random_keys(std::size_t count) {
  std::mt19937 random(16384);
  std::uniform_int_distribution<int> length(0, 24);
  std::uniform_int_distribution<int> choice(0, 9);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < count; ++i) {
    std::string key;
    const int n = length(random);
    for (int j = 0; j < n; ++j) {
      // Braces often, so that tags of every shape occur.
      const int c = choice(random);
      key.push_back(c == 0 ? '{' : c == 1 ? '}' : static_cast<char>(byte(random)));
    }
    keys.push_back(std::move(key));
  }
  return keys;
}

TEST(ClusterKeyslotTest, KeySlotMatchesClusterKeyslot) {
  auto node = start_cluster_node();
  Client client(node.server->url(), cluster_test_options());
  std::vector<std::string> keys = edge_case_keys();
  const std::vector<std::string> random = random_keys(1000);
  keys.insert(keys.end(), random.begin(), random.end());

  Pipeline pipeline;
  for (const std::string& key : keys) pipeline.add({"CLUSTER", "KEYSLOT", key});
  const std::vector<Reply> replies = client.pipeline(pipeline);
  ASSERT_EQ(replies.size(), keys.size());
  std::size_t tagged = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(replies[i].type(), Reply::Type::kInteger) << replies[i].debug_string();
    EXPECT_EQ(key_slot(keys[i]), replies[i].integer())
        << "key #" << i << " (" << keys[i].size() << " bytes)";
    tagged += hashed_part(keys[i]).size() != keys[i].size() ? 1 : 0;
  }
  // The random keys exercise hash tags, not only plain keys.
  EXPECT_GT(tagged, 100u);
}

// What command_keys() says about `args`, in the words of COMMAND GETKEYS: the
// key names, or "no keys".
std::vector<std::string> our_keys(const std::vector<std::string_view>& args) {
  const detail::CommandKeys found = detail::command_keys(args);
  std::vector<std::string> keys;
  found.for_each_position([&](std::uint32_t i) { keys.emplace_back(args.at(i)); });
  return keys;
}

TEST(ClusterKeyslotTest, CommandKeysAgreesWithCommandGetkeys) {
  auto node = start_cluster_node();
  Client client(node.server->url(), cluster_test_options());
  // One sample per command with keys that command_keys() knows (shard
  // channels aside: routed like keys here, "no key arguments" to the server).
  const std::vector<std::vector<std::string_view>> with_keys = {
      {"GET", "k"},
      {"SET", "k", "v", "PX", "100"},
      {"SETNX", "k", "v"},
      {"SETEX", "k", "1", "v"},
      {"PSETEX", "k", "1", "v"},
      {"APPEND", "k", "v"},
      {"STRLEN", "k"},
      {"GETDEL", "k"},
      {"GETEX", "k", "PERSIST"},
      {"GETSET", "k", "v"},
      {"GETRANGE", "k", "0", "1"},
      {"SETRANGE", "k", "0", "v"},
      {"SUBSTR", "k", "0", "1"},
      {"INCR", "k"},
      {"DECR", "k"},
      {"INCRBY", "k", "2"},
      {"DECRBY", "k", "2"},
      {"INCRBYFLOAT", "k", "1.5"},
      {"GETBIT", "k", "1"},
      {"SETBIT", "k", "1", "1"},
      {"BITCOUNT", "k"},
      {"BITPOS", "k", "1"},
      {"BITFIELD", "k", "GET", "u8", "0"},
      {"BITFIELD_RO", "k", "GET", "u8", "0"},
      {"EXPIRE", "k", "10"},
      {"PEXPIRE", "k", "10"},
      {"EXPIREAT", "k", "10"},
      {"PEXPIREAT", "k", "10"},
      {"EXPIRETIME", "k"},
      {"PEXPIRETIME", "k"},
      {"PERSIST", "k"},
      {"TTL", "k"},
      {"PTTL", "k"},
      {"TYPE", "k"},
      {"DUMP", "k"},
      {"RESTORE", "k", "0", "p"},
      {"RESTORE-ASKING", "k", "0", "p"},
      {"SORT_RO", "k", "ALPHA"},
      {"HSET", "k", "f", "v"},
      {"HSETNX", "k", "f", "v"},
      {"HGET", "k", "f"},
      {"HMSET", "k", "f", "v"},
      {"HMGET", "k", "f"},
      {"HGETALL", "k"},
      {"HDEL", "k", "f"},
      {"HLEN", "k"},
      {"HSTRLEN", "k", "f"},
      {"HKEYS", "k"},
      {"HVALS", "k"},
      {"HEXISTS", "k", "f"},
      {"HINCRBY", "k", "f", "1"},
      {"HINCRBYFLOAT", "k", "f", "1"},
      {"HRANDFIELD", "k"},
      {"HSCAN", "k", "0"},
      {"LPUSH", "k", "a"},
      {"RPUSH", "k", "a"},
      {"LPUSHX", "k", "a"},
      {"RPUSHX", "k", "a"},
      {"LPOP", "k"},
      {"RPOP", "k"},
      {"LLEN", "k"},
      {"LRANGE", "k", "0", "1"},
      {"LINDEX", "k", "0"},
      {"LSET", "k", "0", "v"},
      {"LINSERT", "k", "BEFORE", "a", "b"},
      {"LREM", "k", "0", "a"},
      {"LTRIM", "k", "0", "1"},
      {"LPOS", "k", "a"},
      {"SADD", "k", "m"},
      {"SREM", "k", "m"},
      {"SMEMBERS", "k"},
      {"SISMEMBER", "k", "m"},
      {"SMISMEMBER", "k", "m"},
      {"SCARD", "k"},
      {"SPOP", "k"},
      {"SRANDMEMBER", "k"},
      {"SSCAN", "k", "0"},
      {"ZADD", "k", "1", "m"},
      {"ZREM", "k", "m"},
      {"ZCARD", "k"},
      {"ZCOUNT", "k", "0", "1"},
      {"ZINCRBY", "k", "1", "m"},
      {"ZRANGE", "k", "0", "1"},
      {"ZRANGEBYSCORE", "k", "0", "1"},
      {"ZRANGEBYLEX", "k", "-", "+"},
      {"ZREVRANGE", "k", "0", "1"},
      {"ZREVRANGEBYSCORE", "k", "1", "0"},
      {"ZREVRANGEBYLEX", "k", "+", "-"},
      {"ZRANK", "k", "m"},
      {"ZREVRANK", "k", "m"},
      {"ZSCORE", "k", "m"},
      {"ZMSCORE", "k", "m"},
      {"ZREMRANGEBYSCORE", "k", "0", "1"},
      {"ZREMRANGEBYRANK", "k", "0", "1"},
      {"ZREMRANGEBYLEX", "k", "-", "+"},
      {"ZLEXCOUNT", "k", "-", "+"},
      {"ZPOPMIN", "k"},
      {"ZPOPMAX", "k"},
      {"ZRANDMEMBER", "k"},
      {"ZSCAN", "k", "0"},
      {"XADD", "k", "*", "f", "v"},
      {"XRANGE", "k", "-", "+"},
      {"XREVRANGE", "k", "+", "-"},
      {"XLEN", "k"},
      {"XDEL", "k", "1-1"},
      {"XTRIM", "k", "MAXLEN", "10"},
      {"XACK", "k", "g", "1-1"},
      {"XCLAIM", "k", "g", "c", "0", "1-1"},
      {"XAUTOCLAIM", "k", "g", "c", "0", "0"},
      {"XPENDING", "k", "g"},
      {"XSETID", "k", "1-1"},
      {"PFADD", "k", "x"},
      {"GEOADD", "k", "13.3", "38.1", "p"},
      {"GEODIST", "k", "a", "b"},
      {"GEOHASH", "k", "a"},
      {"GEOPOS", "k", "a"},
      {"GEOSEARCH", "k", "FROMMEMBER", "a", "BYRADIUS", "1", "km"},
      {"GEORADIUS_RO", "k", "15", "37", "200", "km"},
      {"GEORADIUSBYMEMBER_RO", "k", "a", "200", "km"},
      {"DEL", "a", "b"},
      {"UNLINK", "a", "b"},
      {"EXISTS", "a", "b"},
      {"MGET", "a", "b"},
      {"TOUCH", "a", "b"},
      {"WATCH", "a", "b"},
      {"SINTER", "a", "b"},
      {"SUNION", "a", "b"},
      {"SDIFF", "a", "b"},
      {"SINTERSTORE", "d", "a", "b"},
      {"SUNIONSTORE", "d", "a"},
      {"SDIFFSTORE", "d", "a"},
      {"PFCOUNT", "a", "b"},
      {"PFMERGE", "d", "a"},
      {"MSET", "a", "1", "b", "2"},
      {"MSETNX", "a", "1", "b", "2"},
      {"RENAME", "a", "b"},
      {"RENAMENX", "a", "b"},
      {"RPOPLPUSH", "a", "b"},
      {"LMOVE", "a", "b", "LEFT", "RIGHT"},
      {"BLMOVE", "a", "b", "LEFT", "RIGHT", "0"},
      {"BRPOPLPUSH", "a", "b", "0"},
      {"SMOVE", "a", "b", "m"},
      {"COPY", "a", "b"},
      {"ZRANGESTORE", "d", "a", "0", "1"},
      {"GEOSEARCHSTORE", "d", "a", "FROMMEMBER", "m", "BYRADIUS", "1", "km"},
      {"LCS", "a", "b"},
      {"BLPOP", "a", "b", "0"},
      {"BRPOP", "a", "0"},
      {"BZPOPMIN", "a", "b", "0"},
      {"BZPOPMAX", "a", "0"},
      {"BITOP", "AND", "d", "a", "b"},
      {"EVAL", "return 1", "2", "a", "b", "x"},
      {"EVALSHA", "abc", "1", "a", "x"},
      {"EVAL_RO", "return 1", "1", "a"},
      {"EVALSHA_RO", "abc", "2", "a", "b"},
      {"FCALL", "f", "1", "a", "x"},
      {"FCALL_RO", "f", "2", "a", "b"},
      {"ZUNION", "2", "a", "b"},
      {"ZINTER", "2", "a", "b", "WITHSCORES"},
      {"ZDIFF", "1", "a"},
      {"ZINTERCARD", "2", "a", "b"},
      {"SINTERCARD", "2", "a", "b", "LIMIT", "1"},
      {"LMPOP", "2", "a", "b", "LEFT"},
      {"ZMPOP", "1", "a", "MIN"},
      {"BLMPOP", "0", "2", "a", "b", "LEFT"},
      {"BZMPOP", "0", "1", "a", "MAX"},
      {"ZUNIONSTORE", "d", "2", "a", "b"},
      {"ZINTERSTORE", "d", "1", "a"},
      {"ZDIFFSTORE", "d", "2", "a", "b"},
      {"OBJECT", "ENCODING", "k"},
      {"OBJECT", "FREQ", "k"},
      {"OBJECT", "IDLETIME", "k"},
      {"OBJECT", "REFCOUNT", "k"},
      {"MEMORY", "USAGE", "k"},
      {"XINFO", "STREAM", "k"},
      {"XINFO", "GROUPS", "k"},
      {"XINFO", "CONSUMERS", "k", "g"},
      {"XGROUP", "CREATE", "k", "g", "$"},
      {"XGROUP", "SETID", "k", "g", "$"},
      {"XGROUP", "DESTROY", "k", "g"},
      {"XGROUP", "CREATECONSUMER", "k", "g", "c"},
      {"XGROUP", "DELCONSUMER", "k", "g", "c"},
      {"XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "a", "b", "0", "0"},
      {"XREADGROUP", "GROUP", "g", "c", "NOACK", "STREAMS", "a", ">"},
      {"SORT", "k", "BY", "w*", "LIMIT", "0", "1", "GET", "#", "DESC", "ALPHA", "STORE", "d"},
      {"sort", "k", "store", "d1", "store", "d2"},
      {"get", "k"},
  };
  for (const std::vector<std::string_view>& args : with_keys) {
    std::vector<std::string_view> getkeys = {"COMMAND", "GETKEYS"};
    getkeys.insert(getkeys.end(), args.begin(), args.end());
    EXPECT_EQ(detail::command_keys(args).kind, detail::KeysKind::kKeys) << args.front();
    const Reply reply = client.command(getkeys);
    std::vector<std::string> theirs;
    for (const Reply& key : reply.array()) theirs.push_back(key.str());
    EXPECT_EQ(our_keys(args), theirs) << args.front();
  }

  // The keyless ones: the server finds no key either.
  const std::vector<std::vector<std::string_view>> keyless = {
      {"PING", "x"},        {"ECHO", "x"},
      {"INFO", "server"},   {"PUBLISH", "c", "m"},
      {"SUBSCRIBE", "c"},   {"SCRIPT", "LOAD", "return 1"},
      {"FUNCTION", "LIST"}, {"CLUSTER", "KEYSLOT", "k"},
      {"WAIT", "0", "0"},   {"KEYS", "*"},
      {"SCAN", "0"},        {"CONFIG", "GET", "port"},
      {"OBJECT", "HELP"},   {"MEMORY", "STATS"},
  };
  for (const std::vector<std::string_view>& args : keyless) {
    EXPECT_EQ(detail::command_keys(args).kind, detail::KeysKind::kNoKeys) << args.front();
    std::vector<std::string_view> getkeys = {"COMMAND", "GETKEYS"};
    getkeys.insert(getkeys.end(), args.begin(), args.end());
    try {
      const Reply reply = client.command(getkeys);
      EXPECT_TRUE(reply.array().empty()) << args.front() << ": " << reply.debug_string();
    } catch (const ReplyError& error) {
      EXPECT_THAT(error.server_message(), ::testing::HasSubstr("no key arguments")) << args.front();
    }
  }
}

}  // namespace
}  // namespace prodsafe::redis
