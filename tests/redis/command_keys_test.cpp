// command_keys() and command_slot(): which arguments are keys, and the one
// slot they share; no server needed.
#include "command_keys.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/slot.hpp"
#include "support/allocation_failure.hpp"

namespace prodsafe::redis::detail {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Args = std::vector<std::string_view>;

// The keys command_keys() finds in `args`.
std::vector<std::string_view> keys_of(const Args& args) {
  const CommandKeys found = command_keys(args);
  EXPECT_EQ(found.kind, KeysKind::kKeys) << args.front();
  std::vector<std::string_view> keys;
  found.for_each_position([&](std::uint32_t i) { keys.push_back(args.at(i)); });
  EXPECT_EQ(found.count(), keys.size()) << args.front();
  return keys;
}

KeysKind kind_of(const Args& args) { return command_keys(args).kind; }

std::string invalid_argument_message(const Args& args) {
  try {
    (void)command_slot(args);
  } catch (const InvalidArgument& error) {
    return error.what();
  }
  return "(no InvalidArgument)";
}

TEST(CommandKeysTest, SingleKeyCommandsInAnyCase) {
  const std::vector<Args> cases = {
      {"GET", "k"},
      {"get", "k"},
      {"Set", "k", "v", "PX", "100"},
      {"SETNX", "k", "v"},
      {"SETEX", "k", "10", "v"},
      {"PSETEX", "k", "10", "v"},
      {"GETDEL", "k"},
      {"APPEND", "k", "v"},
      {"STRLEN", "k"},
      {"INCR", "k"},
      {"EXPIRE", "k", "10"},
      {"PEXPIRE", "k", "10"},
      {"TTL", "k"},
      {"PTTL", "k"},
      {"TYPE", "k"},
      {"DUMP", "k"},
      {"RESTORE", "k", "0", "payload"},
      {"HSET", "k", "f", "v", "g", "w"},
      {"hget", "k", "f"},
      {"HGETALL", "k"},
      {"HDEL", "k", "f", "g"},
      {"HINCRBY", "k", "f", "1"},
      {"ZADD", "k", "1", "m"},
      {"ZRANGE", "k", "0", "-1"},
      {"ZREM", "k", "m"},
      {"ZREMRANGEBYSCORE", "k", "0", "10"},
      {"ZCARD", "k"},
      {"LPUSH", "k", "a", "b"},
      {"RPUSH", "k", "a"},
      {"LRANGE", "k", "0", "-1"},
      {"LTRIM", "k", "0", "9"},
      {"SADD", "k", "m"},
      {"SMEMBERS", "k"},
      {"XADD", "k", "*", "f", "v"},
      {"XRANGE", "k", "-", "+"},
      {"XLEN", "k"},
      {"PFADD", "k", "x"},
      {"GEOADD", "k", "13.36", "38.11", "Palermo"},
      {"SORT_RO", "k", "ALPHA"},
  };
  for (const Args& args : cases) {
    EXPECT_THAT(keys_of(args), ElementsAre("k")) << args.front();
  }
}

TEST(CommandKeysTest, MultiKeyCommands) {
  EXPECT_THAT(keys_of({"DEL", "a", "b", "c"}), ElementsAre("a", "b", "c"));
  EXPECT_THAT(keys_of({"unlink", "a", "b"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"EXISTS", "a", "b"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"MGET", "a", "b", "c"}), ElementsAre("a", "b", "c"));
  EXPECT_THAT(keys_of({"MSET", "a", "1", "b", "2"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"MSETNX", "a", "1", "b", "2", "c", "3"}), ElementsAre("a", "b", "c"));
  EXPECT_THAT(keys_of({"WATCH", "a", "b"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"RENAME", "a", "b"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"LMOVE", "a", "b", "LEFT", "RIGHT"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"BLMOVE", "a", "b", "LEFT", "RIGHT", "0"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"COPY", "a", "b", "REPLACE"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"SMOVE", "a", "b", "m"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"BLPOP", "a", "b", "0"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"BZPOPMIN", "a", "1.5"}), ElementsAre("a"));
  EXPECT_THAT(keys_of({"SINTERSTORE", "d", "a", "b"}), ElementsAre("d", "a", "b"));
  EXPECT_THAT(keys_of({"PFMERGE", "d", "a"}), ElementsAre("d", "a"));
  EXPECT_THAT(keys_of({"BITOP", "AND", "d", "a", "b"}), ElementsAre("d", "a", "b"));
  EXPECT_THAT(keys_of({"ZRANGESTORE", "d", "s", "0", "-1"}), ElementsAre("d", "s"));
}

TEST(CommandKeysTest, ShardChannelsRouteLikeKeysClassicChannelsDoNot) {
  EXPECT_THAT(keys_of({"SPUBLISH", "ch", "msg"}), ElementsAre("ch"));
  EXPECT_THAT(keys_of({"SSUBSCRIBE", "a", "b"}), ElementsAre("a", "b"));
  EXPECT_EQ(kind_of({"PUBLISH", "ch", "msg"}), KeysKind::kNoKeys);
  EXPECT_EQ(kind_of({"SUBSCRIBE", "ch"}), KeysKind::kNoKeys);
}

TEST(CommandKeysTest, KeylessCommands) {
  const std::vector<Args> cases = {
      {"PING"},
      {"INFO", "memory"},
      {"TIME"},
      {"SCRIPT", "LOAD", "return 1"},
      {"CLUSTER", "SHARDS"},
      {"cluster", "keyslot", "k"},
      {"WAIT", "1", "100"},
      {"MULTI"},
      {"EXEC"},
      {"DISCARD"},
      {"UNWATCH"},
      {"FUNCTION", "LIST"},
      {"DBSIZE"},
      {"ECHO", "x"},
      {"ASKING"},
      {"READONLY"},
      {"KEYS", "*"},
      {"SCAN", "0"},
      {"COMMAND", "GETKEYS", "GET", "k"},
  };
  for (const Args& args : cases) {
    EXPECT_EQ(kind_of(args), KeysKind::kNoKeys) << args.front();
    const CommandSlot slot = command_slot(args);
    EXPECT_EQ(slot.kind, SlotKind::kAnyNode) << args.front();
    EXPECT_EQ(slot.slot, -1);
  }
}

TEST(CommandKeysTest, SubcommandsWithAKey) {
  EXPECT_THAT(keys_of({"OBJECT", "ENCODING", "k"}), ElementsAre("k"));
  EXPECT_THAT(keys_of({"object", "freq", "k"}), ElementsAre("k"));
  EXPECT_THAT(keys_of({"MEMORY", "USAGE", "k", "SAMPLES", "5"}), ElementsAre("k"));
  EXPECT_THAT(keys_of({"XINFO", "STREAM", "k", "FULL"}), ElementsAre("k"));
  EXPECT_THAT(keys_of({"XGROUP", "CREATE", "k", "g", "$", "MKSTREAM"}), ElementsAre("k"));
  EXPECT_EQ(kind_of({"MEMORY", "STATS"}), KeysKind::kNoKeys);
  EXPECT_EQ(kind_of({"OBJECT", "HELP"}), KeysKind::kNoKeys);
  EXPECT_EQ(kind_of({"MEMORY", "SOMETHING-NEW", "k"}), KeysKind::kUnknown);
}

TEST(CommandKeysTest, ScriptsAndFunctionsTakeTheirNumkeysKeys) {
  EXPECT_THAT(keys_of({"EVAL", "return 1", "2", "a", "b", "arg"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"evalsha", "0123", "1", "a", "arg1", "arg2"}), ElementsAre("a"));
  EXPECT_THAT(keys_of({"EVAL_RO", "return 1", "1", "a"}), ElementsAre("a"));
  EXPECT_THAT(keys_of({"EVALSHA_RO", "0123", "2", "a", "b"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"FCALL", "f", "1", "a", "x"}), ElementsAre("a"));
  EXPECT_THAT(keys_of({"FCALL_RO", "f", "0", "x"}), ElementsAre());
  // No keys: any node will do.
  EXPECT_EQ(command_slot(Args{"EVAL", "return 1", "0"}).kind, SlotKind::kAnyNode);
  EXPECT_EQ(command_slot(Args{"EVAL", "return 1", "0", "arg"}).kind, SlotKind::kAnyNode);
}

TEST(CommandKeysTest, BadNumkeysIsRefusedWithAClearMessage) {
  EXPECT_THAT(invalid_argument_message({"EVAL", "return 1", "x", "a"}),
              HasSubstr("EVAL: numkeys 'x' (argument 2) is not a number"));
  EXPECT_THAT(invalid_argument_message({"EVAL", "return 1", "x", "a"}),
              HasSubstr("EVAL script numkeys [key ...] [arg ...]"));
  EXPECT_THAT(invalid_argument_message({"evalsha", "0123", "-1", "a"}),
              HasSubstr("evalsha: numkeys -1 (argument 2) is negative"));
  EXPECT_THAT(invalid_argument_message({"FCALL", "f", "3", "a", "b"}),
              HasSubstr("FCALL: numkeys 3 (argument 2) is more than the 2 argument(s)"));
  EXPECT_THAT(invalid_argument_message({"EVAL", "s", "1.5", "a"}), HasSubstr("not a number"));
  EXPECT_THAT(invalid_argument_message({"EVAL", "s", "", "a"}), HasSubstr("not a number"));
  EXPECT_THAT(invalid_argument_message({"EVAL", "s", "1 ", "a"}), HasSubstr("not a number"));
  EXPECT_THAT(invalid_argument_message({"EVAL", "s", "99999999999999999999999", "a"}),
              HasSubstr("not a number"));
  EXPECT_THAT(invalid_argument_message({"ZUNIONSTORE", "d", "2", "a"}),
              HasSubstr("ZUNIONSTORE: numkeys 2 (argument 2) is more than the 1 argument(s)"));
  EXPECT_THAT(invalid_argument_message({"LMPOP", "abc", "a", "LEFT"}),
              HasSubstr("LMPOP numkeys key [key ...] LEFT|RIGHT"));
  // A huge blob in place of numkeys is cut short in the message.
  const std::string blob(10000, '7');
  const std::string message = invalid_argument_message({"EVAL", "s", blob, "a"});
  EXPECT_LT(message.size(), 600u) << message;
  // Missing numkeys altogether is the server's arity error to give.
  EXPECT_EQ(command_slot(Args{"EVAL", "return 1"}).kind, SlotKind::kAnyNode);
}

TEST(CommandKeysTest, SetOperationsWithNumkeys) {
  EXPECT_THAT(keys_of({"ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"}),
              ElementsAre("d", "a", "b"));
  EXPECT_THAT(keys_of({"zinterstore", "d", "1", "a"}), ElementsAre("d", "a"));
  EXPECT_THAT(keys_of({"ZDIFFSTORE", "d", "2", "a", "b"}), ElementsAre("d", "a", "b"));
  EXPECT_THAT(keys_of({"ZUNION", "2", "a", "b", "WITHSCORES"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"ZINTERCARD", "2", "a", "b", "LIMIT", "5"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"SINTERCARD", "1", "a"}), ElementsAre("a"));
  EXPECT_THAT(keys_of({"LMPOP", "2", "a", "b", "LEFT", "COUNT", "2"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"BLMPOP", "0", "2", "a", "b", "RIGHT"}), ElementsAre("a", "b"));
  EXPECT_THAT(keys_of({"BZMPOP", "1.5", "1", "a", "MIN"}), ElementsAre("a"));
}

TEST(CommandKeysTest, StreamReadsTakeTheKeysAfterStreams) {
  EXPECT_THAT(keys_of({"XREAD", "STREAMS", "a", "0"}), ElementsAre("a"));
  EXPECT_THAT(keys_of({"XREAD", "COUNT", "10", "BLOCK", "100", "STREAMS", "a", "b", "0", "$"}),
              ElementsAre("a", "b"));
  // A group or consumer named like a keyword is not a keyword.
  EXPECT_THAT(keys_of({"XREADGROUP", "GROUP", "STREAMS", "COUNT", "noack", "streams", "s", ">"}),
              ElementsAre("s"));
  EXPECT_THAT(
      keys_of({"xreadgroup", "group", "g", "c", "COUNT", "1", "STREAMS", "a", "b", ">", ">"}),
      ElementsAre("a", "b"));
  EXPECT_THAT(invalid_argument_message({"XREAD", "STREAMS", "a", "b", "0"}),
              HasSubstr("XREAD: 3 argument(s) after STREAMS"));
  EXPECT_THAT(invalid_argument_message({"XREAD", "STREAMS"}), HasSubstr("0 argument(s)"));
  EXPECT_THAT(invalid_argument_message({"XREAD", "COUNT", "1"}), HasSubstr("without STREAMS"));
  // NOACK belongs to XREADGROUP only; an option we do not know: ask the server.
  EXPECT_EQ(kind_of({"XREAD", "NOACK", "STREAMS", "a", "0"}), KeysKind::kUnknown);
  EXPECT_EQ(kind_of({"XREAD", "CLAIM", "10", "STREAMS", "a", "0"}), KeysKind::kUnknown);
}

TEST(CommandKeysTest, SortTakesItsKeyAndTheLastStoreDestination) {
  EXPECT_THAT(keys_of({"SORT", "k"}), ElementsAre("k"));
  EXPECT_THAT(keys_of({"SORT", "k", "BY", "w_*", "LIMIT", "0", "10", "GET", "o_*", "GET", "#",
                       "DESC", "ALPHA", "STORE", "d"}),
              ElementsAre("k", "d"));
  EXPECT_THAT(keys_of({"sort", "k", "store", "d1", "STORE", "d2"}), ElementsAre("k", "d2"));
  // A pattern spelled like a keyword is a pattern.
  EXPECT_THAT(keys_of({"SORT", "k", "BY", "STORE", "GET", "STORE"}), ElementsAre("k"));
  EXPECT_EQ(kind_of({"SORT", "k", "SOMETHING"}), KeysKind::kUnknown);
}

TEST(CommandKeysTest, UnknownCommandsAskTheServer) {
  EXPECT_EQ(kind_of({"MYMODULE.DO", "k"}), KeysKind::kUnknown);
  EXPECT_EQ(kind_of({"GEORADIUS", "k", "15", "37", "200", "km", "STORE", "d"}), KeysKind::kUnknown);
  EXPECT_EQ(kind_of({"MIGRATE", "h", "6379", "", "0", "100", "KEYS", "a"}), KeysKind::kUnknown);
  EXPECT_EQ(kind_of({"GE"}), KeysKind::kUnknown);
  EXPECT_EQ(kind_of({std::string_view("GET\0", 4), "k"}), KeysKind::kUnknown);
  EXPECT_EQ(kind_of({"AVERYLONGCOMMANDNAMETHATNOREDISHASEVERHAD"}), KeysKind::kUnknown);
  EXPECT_EQ(kind_of({""}), KeysKind::kUnknown);
  EXPECT_EQ(command_slot(Args{"MYMODULE.DO", "k"}).kind, SlotKind::kUnknown);
  EXPECT_THROW((void)command_keys(Args{}), InvalidArgument);
}

TEST(CommandKeysTest, TooFewArgumentsMeanNoKeysTheServerGivesTheArityError) {
  EXPECT_THAT(keys_of({"GET"}), ElementsAre());
  EXPECT_THAT(keys_of({"DEL"}), ElementsAre());
  EXPECT_THAT(keys_of({"BLPOP", "0"}), ElementsAre());
  EXPECT_THAT(keys_of({"RENAME", "a"}), ElementsAre("a"));
  EXPECT_THAT(keys_of({"OBJECT"}), ElementsAre());
  EXPECT_THAT(keys_of({"OBJECT", "ENCODING"}), ElementsAre());
  EXPECT_EQ(command_slot(Args{"GET"}).kind, SlotKind::kAnyNode);
}

TEST(CommandSlotTest, KeysOfOneSlotGiveThatSlot) {
  const CommandSlot get = command_slot(Args{"GET", "foo"});
  EXPECT_EQ(get.kind, SlotKind::kSlot);
  EXPECT_EQ(get.slot, key_slot("foo"));
  const CommandSlot mget = command_slot(Args{"MGET", "{u1}:a", "{u1}:b", "{u1}:c"});
  EXPECT_EQ(mget.kind, SlotKind::kSlot);
  EXPECT_EQ(mget.slot, key_slot("u1"));
  const CommandSlot eval = command_slot(Args{"EVAL", "s", "2", "{t}x", "{t}y", "notakey"});
  EXPECT_EQ(eval.slot, key_slot("t"));
  // The same key twice is one slot.
  EXPECT_EQ(command_slot(Args{"RPOPLPUSH", "l", "l"}).slot, key_slot("l"));
  // Values are not keys: MSET's values may hash anywhere.
  EXPECT_EQ(command_slot(Args{"MSET", "{a}1", "x", "{a}2", "y"}).slot, key_slot("a"));
}

TEST(CommandSlotTest, KeysAcrossSlotsAreRefusedBeforeSending) {
  ASSERT_NE(key_slot("a"), key_slot("b"));
  const std::string message = invalid_argument_message({"MGET", "a", "a", "b"});
  EXPECT_THAT(message, HasSubstr("CROSSSLOT: MGET touches the keys 'a' (slot " +
                                 std::to_string(key_slot("a")) + ") and 'b' (slot " +
                                 std::to_string(key_slot("b")) + ")"));
  EXPECT_THAT(message, HasSubstr("shared hash tag"));
  EXPECT_THAT(message, HasSubstr("{order42}"));
  EXPECT_THAT(invalid_argument_message({"EVAL", "s", "2", "{x}1", "{y}1"}),
              HasSubstr("EVAL touches the keys '{x}1'"));
  EXPECT_THAT(invalid_argument_message({"ZUNIONSTORE", "dest", "1", "src"}), HasSubstr("'dest'"));
  EXPECT_THAT(invalid_argument_message({"SORT", "{a}k", "STORE", "{b}d"}), HasSubstr("'{b}d'"));
  // The keys the server named (COMMAND GETKEYS) are checked alike.
  const std::vector<std::string_view> keys = {"{t}1", "{t}2"};
  EXPECT_EQ(keys_slot("MYMODULE.DO", keys), key_slot("t"));
  EXPECT_EQ(keys_slot("MYMODULE.DO", {}), std::nullopt);
  const std::vector<std::string_view> spread = {"{t}1", "{u}2"};
  EXPECT_THROW((void)keys_slot("MYMODULE.DO", spread), InvalidArgument);
}

TEST(CommandSlotTest, CommonCommandsAllocateNothing) {
  const Args get = {"get", "{order42}:claim"};
  const Args eval = {"EVALSHA", "0123456789abcdef", "2", "{o}:a", "{o}:b", "arg"};
  const Args mset = {"MSET", "{o}a", "1", "{o}b", "2"};
  const Args xread = {"XREAD", "COUNT", "1", "STREAMS", "s", "0"};
  // Any allocation on this thread now throws std::bad_alloc.
  prodsafe::testing::FailAllocations fail({.count = static_cast<std::size_t>(-1)});
  CommandSlot results[4];
  EXPECT_NO_THROW({
    results[0] = command_slot(get);
    results[1] = command_slot(eval);
    results[2] = command_slot(mset);
    results[3] = command_slot(xread);
  });
  EXPECT_EQ(fail.failed(), 0u);
  for (const CommandSlot& result : results) EXPECT_EQ(result.kind, SlotKind::kSlot);
}

}  // namespace
}  // namespace prodsafe::redis::detail
