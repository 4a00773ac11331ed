#include "command_keys.hpp"

#include <algorithm>
#include <charconv>
#include <string>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/slot.hpp"

namespace prodsafe::redis::detail {
namespace {

// How a command's keys are found (Redis's legacy key specification where it
// suffices: first key, last key, step).
enum class Rule : std::uint8_t {
  kNone,        // no keys
  kRange,       // keys at first..last (inclusive; last < 0 counts from the end: -1 is the
                // last argument) every `step`
  kNumkeys,     // the count of keys at `first`, the keys right after it; `last` > 0: one more
                // key (a destination) at `last`
  kSubcommand,  // OBJECT, MEMORY, XINFO, XGROUP: the key at 2 for some subcommands
  kXread,       // XREAD [COUNT n] [BLOCK ms] STREAMS key... id...
  kXreadgroup,  // XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK] STREAMS key... id...
  kSort,        // SORT key [BY p] [LIMIT o c] [GET p]... [ASC|DESC] [ALPHA] [STORE dest]
  kUnknown,     // known here, but not parsed: ask the server
};

struct Entry {
  std::string_view word;  // upper case
  Rule rule = Rule::kUnknown;
  std::int8_t first = 0;
  std::int8_t last = 0;
  std::int8_t step = 1;
  std::string_view usage{};  // kNumkeys: the command's syntax, for error messages
};

// Keyless. PUBLISH/SUBSCRIBE channels are cluster-wide, not keys; SCRIPT,
// FUNCTION, CLUSTER, CONFIG, CLIENT, ... take no key in any subcommand.
constexpr std::string_view kKeyless[] = {
    "PING",      "ECHO",         "INFO",        "TIME",         "DBSIZE",  "LASTSAVE", "ROLE",
    "FLUSHALL",  "FLUSHDB",      "RANDOMKEY",   "KEYS",         "SCAN",    "PUBLISH",  "PUBSUB",
    "SUBSCRIBE", "PSUBSCRIBE",   "UNSUBSCRIBE", "PUNSUBSCRIBE", "SCRIPT",  "FUNCTION", "CLUSTER",
    "CONFIG",    "CLIENT",       "COMMAND",     "WAIT",         "WAITAOF", "MULTI",    "EXEC",
    "DISCARD",   "UNWATCH",      "READONLY",    "READWRITE",    "ASKING",  "HELLO",    "AUTH",
    "SELECT",    "QUIT",         "RESET",       "SLOWLOG",      "LATENCY", "ACL",      "SAVE",
    "BGSAVE",    "BGREWRITEAOF", "LOLWUT",      "MONITOR",      "SWAPDB",  "SHUTDOWN", "REPLICAOF",
    "SLAVEOF",   "FAILOVER",     "MODULE"};

// One key, the first argument. SPUBLISH: a shard channel routes like a key.
constexpr std::string_view kFirstArgument[] = {
    // strings and generic commands
    "GET", "SET", "SETNX", "SETEX", "PSETEX", "APPEND", "STRLEN", "GETDEL", "GETEX", "GETSET",
    "GETRANGE", "SETRANGE", "SUBSTR", "INCR", "DECR", "INCRBY", "DECRBY", "INCRBYFLOAT", "GETBIT",
    "SETBIT", "BITCOUNT", "BITPOS", "BITFIELD", "BITFIELD_RO", "EXPIRE", "PEXPIRE", "EXPIREAT",
    "PEXPIREAT", "EXPIRETIME", "PEXPIRETIME", "PERSIST", "TTL", "PTTL", "TYPE", "DUMP", "RESTORE",
    "RESTORE-ASKING", "SORT_RO", "SPUBLISH",
    // hashes
    "HSET", "HSETNX", "HGET", "HMSET", "HMGET", "HGETALL", "HDEL", "HLEN", "HSTRLEN", "HKEYS",
    "HVALS", "HEXISTS", "HINCRBY", "HINCRBYFLOAT", "HRANDFIELD", "HSCAN",
    // lists
    "LPUSH", "RPUSH", "LPUSHX", "RPUSHX", "LPOP", "RPOP", "LLEN", "LRANGE", "LINDEX", "LSET",
    "LINSERT", "LREM", "LTRIM", "LPOS",
    // sets
    "SADD", "SREM", "SMEMBERS", "SISMEMBER", "SMISMEMBER", "SCARD", "SPOP", "SRANDMEMBER", "SSCAN",
    // sorted sets
    "ZADD", "ZREM", "ZCARD", "ZCOUNT", "ZINCRBY", "ZRANGE", "ZRANGEBYSCORE", "ZRANGEBYLEX",
    "ZREVRANGE", "ZREVRANGEBYSCORE", "ZREVRANGEBYLEX", "ZRANK", "ZREVRANK", "ZSCORE", "ZMSCORE",
    "ZREMRANGEBYSCORE", "ZREMRANGEBYRANK", "ZREMRANGEBYLEX", "ZLEXCOUNT", "ZPOPMIN", "ZPOPMAX",
    "ZRANDMEMBER", "ZSCAN",
    // streams, HyperLogLog, geo
    "XADD", "XRANGE", "XREVRANGE", "XLEN", "XDEL", "XTRIM", "XACK", "XCLAIM", "XAUTOCLAIM",
    "XPENDING", "XSETID", "PFADD", "GEOADD", "GEODIST", "GEOHASH", "GEOPOS", "GEOSEARCH",
    "GEORADIUS_RO", "GEORADIUSBYMEMBER_RO"};

// Every argument a key (shard channels for SSUBSCRIBE, SUNSUBSCRIBE).
constexpr std::string_view kEveryArgument[] = {
    "DEL",     "UNLINK",  "EXISTS",     "MGET",        "TOUCH",       "WATCH",
    "SINTER",  "SUNION",  "SDIFF",      "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE",
    "PFCOUNT", "PFMERGE", "SSUBSCRIBE", "SUNSUBSCRIBE"};

// Two keys: source and destination (or the two compared).
constexpr std::string_view kFirstTwoArguments[] = {
    "RENAME", "RENAMENX", "RPOPLPUSH",   "LMOVE",          "BLMOVE", "BRPOPLPUSH",
    "SMOVE",  "COPY",     "ZRANGESTORE", "GEOSEARCHSTORE", "LCS"};

constexpr Entry numkeys(std::string_view word, std::int8_t at, std::string_view usage,
                        std::int8_t destination = 0) {
  return {word, Rule::kNumkeys, at, destination, 1, usage};
}

// The rest, each with its own rule.
constexpr Entry kOthers[] = {
    // key value key value ...
    {"MSET", Rule::kRange, 1, -1, 2},
    {"MSETNX", Rule::kRange, 1, -1, 2},
    // key [key ...] timeout
    {"BLPOP", Rule::kRange, 1, -2, 1},
    {"BRPOP", Rule::kRange, 1, -2, 1},
    {"BZPOPMIN", Rule::kRange, 1, -2, 1},
    {"BZPOPMAX", Rule::kRange, 1, -2, 1},
    // BITOP operation destkey key [key ...]
    {"BITOP", Rule::kRange, 2, -1, 1},
    // A count of keys, then the keys.
    numkeys("EVAL", 2, "EVAL script numkeys [key ...] [arg ...]"),
    numkeys("EVALSHA", 2, "EVALSHA sha1 numkeys [key ...] [arg ...]"),
    numkeys("EVAL_RO", 2, "EVAL_RO script numkeys [key ...] [arg ...]"),
    numkeys("EVALSHA_RO", 2, "EVALSHA_RO sha1 numkeys [key ...] [arg ...]"),
    numkeys("FCALL", 2, "FCALL function numkeys [key ...] [arg ...]"),
    numkeys("FCALL_RO", 2, "FCALL_RO function numkeys [key ...] [arg ...]"),
    numkeys("ZUNION", 1, "ZUNION numkeys key [key ...] ..."),
    numkeys("ZINTER", 1, "ZINTER numkeys key [key ...] ..."),
    numkeys("ZDIFF", 1, "ZDIFF numkeys key [key ...] ..."),
    numkeys("ZINTERCARD", 1, "ZINTERCARD numkeys key [key ...] [LIMIT limit]"),
    numkeys("SINTERCARD", 1, "SINTERCARD numkeys key [key ...] [LIMIT limit]"),
    numkeys("LMPOP", 1, "LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]"),
    numkeys("ZMPOP", 1, "ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]"),
    numkeys("BLMPOP", 2, "BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]"),
    numkeys("BZMPOP", 2, "BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]"),
    numkeys("ZUNIONSTORE", 2, "ZUNIONSTORE destination numkeys key [key ...] ...", 1),
    numkeys("ZINTERSTORE", 2, "ZINTERSTORE destination numkeys key [key ...] ...", 1),
    numkeys("ZDIFFSTORE", 2, "ZDIFFSTORE destination numkeys key [key ...]", 1),
    // Parsed by hand.
    {"OBJECT", Rule::kSubcommand},
    {"MEMORY", Rule::kSubcommand},
    {"XINFO", Rule::kSubcommand},
    {"XGROUP", Rule::kSubcommand},
    {"XREAD", Rule::kXread},
    {"XREADGROUP", Rule::kXreadgroup},
    {"SORT", Rule::kSort},
    // Known, but their keys hide among options (GEORADIUS's STORE and
    // STOREDIST, MIGRATE's KEYS): the server says.
    {"GEORADIUS", Rule::kUnknown},
    {"GEORADIUSBYMEMBER", Rule::kUnknown},
    {"MIGRATE", Rule::kUnknown}};

constexpr std::size_t kCommandCount = std::size(kKeyless) + std::size(kFirstArgument) +
                                      std::size(kEveryArgument) + std::size(kFirstTwoArguments) +
                                      std::size(kOthers);

constexpr bool shorter(const Entry& a, const Entry& b) {
  return a.word.size() != b.word.size() ? a.word.size() < b.word.size() : a.word < b.word;
}

// Every command above, ordered by name length, then name.
constexpr std::array<Entry, kCommandCount> kByLength = [] {
  std::array<Entry, kCommandCount> sorted{};
  std::size_t i = 0;
  for (const std::string_view word : kKeyless) sorted[i++] = {word, Rule::kNone};
  for (const std::string_view word : kFirstArgument) sorted[i++] = {word, Rule::kRange, 1, 1, 1};
  for (const std::string_view word : kEveryArgument) sorted[i++] = {word, Rule::kRange, 1, -1, 1};
  for (const std::string_view word : kFirstTwoArguments) {
    sorted[i++] = {word, Rule::kRange, 1, 2, 1};
  }
  for (const Entry& entry : kOthers) sorted[i++] = entry;
  std::sort(sorted.begin(), sorted.end(), shorter);
  return sorted;
}();

constexpr std::size_t kLongestName = kByLength.back().word.size();

// kByLength[kStartOfLength[n] .. kStartOfLength[n + 1]) are the names of n characters.
constexpr std::array<std::size_t, kLongestName + 2> kStartOfLength = [] {
  std::array<std::size_t, kLongestName + 2> start{};
  std::size_t i = 0;
  for (std::size_t length = 0; length <= kLongestName + 1; ++length) {
    while (i < kCommandCount && kByLength[i].word.size() < length) ++i;
    start[length] = i;
  }
  return start;
}();

constexpr bool names_are_upper_case_and_unique() {
  for (std::size_t i = 0; i < kCommandCount; ++i) {
    if (kByLength[i].word.empty()) return false;
    for (const char c : kByLength[i].word) {
      if (c >= 'a' && c <= 'z') return false;
    }
    if (i > 0 && kByLength[i - 1].word == kByLength[i].word) return false;
  }
  return true;
}
static_assert(names_are_upper_case_and_unique(), "command names must be upper case and unique");

constexpr char to_upper(char c) noexcept {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

// `word` in any case equals `upper`.
constexpr bool equals_upper(std::string_view word, std::string_view upper) noexcept {
  if (word.size() != upper.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (to_upper(word[i]) != upper[i]) return false;
  }
  return true;
}

const Entry* find_command(std::string_view name) noexcept {
  if (name.empty() || name.size() > kLongestName) return nullptr;
  const char first = to_upper(name.front());
  for (std::size_t i = kStartOfLength[name.size()]; i < kStartOfLength[name.size() + 1]; ++i) {
    const Entry& entry = kByLength[i];
    if (entry.word.front() == first && equals_upper(name, entry.word)) return &entry;
  }
  return nullptr;
}

// Enough of an argument to recognise it in a message, never a whole blob.
std::string shown(std::string_view text) {
  constexpr std::size_t kMaxShown = 64;
  if (text.size() <= kMaxShown) return std::string(text);
  return fmt::format("{}... ({} bytes)", text.substr(0, kMaxShown), text.size());
}

CommandKeys no_keys() { return {KeysKind::kNoKeys, {}, 0}; }
CommandKeys unknown() { return {KeysKind::kUnknown, {}, 0}; }

// The keys in argv[begin, end) every `step`, clamped to argv.
CommandKeys keys(std::size_t size, std::size_t begin, std::size_t end, std::size_t step = 1) {
  CommandKeys result{KeysKind::kKeys, {}, 0};
  end = std::min(end, size);
  if (begin < end) {
    result.ranges[0] = {static_cast<std::uint32_t>(begin), static_cast<std::uint32_t>(end),
                        static_cast<std::uint32_t>(step)};
    result.range_count = 1;
  }
  return result;
}

void add_range(CommandKeys& result, std::size_t size, std::size_t begin, std::size_t end) {
  end = std::min(end, size);
  if (begin >= end) return;
  result.ranges[result.range_count++] = {static_cast<std::uint32_t>(begin),
                                         static_cast<std::uint32_t>(end), 1};
}

CommandKeys range_keys(std::span<const std::string_view> argv, const Entry& entry) {
  const auto size = static_cast<std::ptrdiff_t>(argv.size());
  const std::ptrdiff_t last = entry.last >= 0 ? entry.last : size + entry.last;
  if (last < entry.first) return keys(argv.size(), 0, 0);
  return keys(argv.size(), static_cast<std::size_t>(entry.first),
              static_cast<std::size_t>(last) + 1, static_cast<std::size_t>(entry.step));
}

CommandKeys numkeys_keys(std::span<const std::string_view> argv, const Entry& entry) {
  CommandKeys result{KeysKind::kKeys, {}, 0};
  if (entry.last > 0)
    add_range(result, argv.size(), static_cast<std::size_t>(entry.last),
              static_cast<std::size_t>(entry.last) + 1);
  const auto at = static_cast<std::size_t>(entry.first);
  if (at >= argv.size()) return result;  // too few arguments: the server says so
  const std::string_view text = argv[at];
  long long count = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), count);
  if (error != std::errc() || end != text.data() + text.size()) {
    throw InvalidArgument(fmt::format(
        "{}: numkeys '{}' (argument {}) is not a number; the syntax is {}: pass the count of keys",
        shown(argv.front()), shown(text), at, entry.usage));
  }
  if (count < 0) {
    throw InvalidArgument(fmt::format(
        "{}: numkeys {} (argument {}) is negative; the syntax is {}: pass the count of keys, 0 or "
        "more",
        shown(argv.front()), count, at, entry.usage));
  }
  const std::size_t following = argv.size() - at - 1;
  if (static_cast<unsigned long long>(count) > following) {
    throw InvalidArgument(fmt::format(
        "{}: numkeys {} (argument {}) is more than the {} argument(s) that follow it; the syntax "
        "is {}: pass the count of keys that follow",
        shown(argv.front()), count, at, following, entry.usage));
  }
  add_range(result, argv.size(), at + 1, at + 1 + static_cast<std::size_t>(count));
  return result;
}

CommandKeys subcommand_keys(std::span<const std::string_view> argv, const Entry& entry) {
  if (argv.size() < 2) return keys(argv.size(), 0, 0);
  const std::string_view sub = argv[1];
  struct Sub {
    std::string_view command;
    std::string_view word;
    bool has_key;
  };
  static constexpr Sub kSubcommands[] = {
      {"OBJECT", "ENCODING", true},       {"OBJECT", "FREQ", true},
      {"OBJECT", "IDLETIME", true},       {"OBJECT", "REFCOUNT", true},
      {"OBJECT", "HELP", false},          {"MEMORY", "USAGE", true},
      {"MEMORY", "STATS", false},         {"MEMORY", "DOCTOR", false},
      {"MEMORY", "MALLOC-STATS", false},  {"MEMORY", "PURGE", false},
      {"MEMORY", "HELP", false},          {"XINFO", "STREAM", true},
      {"XINFO", "GROUPS", true},          {"XINFO", "CONSUMERS", true},
      {"XINFO", "HELP", false},           {"XGROUP", "CREATE", true},
      {"XGROUP", "SETID", true},          {"XGROUP", "DESTROY", true},
      {"XGROUP", "CREATECONSUMER", true}, {"XGROUP", "DELCONSUMER", true},
      {"XGROUP", "HELP", false},
  };
  for (const Sub& candidate : kSubcommands) {
    if (candidate.command == entry.word && equals_upper(sub, candidate.word)) {
      return candidate.has_key ? keys(argv.size(), 2, 3) : no_keys();
    }
  }
  return unknown();
}

// XREAD and XREADGROUP: the keys are the first half of what follows STREAMS.
CommandKeys stream_keys(std::span<const std::string_view> argv, bool group) {
  std::size_t i = 1;
  while (i < argv.size()) {
    const std::string_view token = argv[i];
    if (equals_upper(token, "STREAMS")) {
      const std::size_t rest = argv.size() - i - 1;
      if (rest == 0 || rest % 2 != 0) {
        throw InvalidArgument(fmt::format(
            "{}: {} argument(s) after STREAMS; give each stream key, then one ID per key "
            "(STREAMS key1 key2 id1 id2)",
            shown(argv.front()), rest));
      }
      return keys(argv.size(), i + 1, i + 1 + rest / 2);
    }
    if (equals_upper(token, "COUNT") || equals_upper(token, "BLOCK")) {
      i += 2;
    } else if (group && equals_upper(token, "GROUP")) {
      i += 3;
    } else if (group && equals_upper(token, "NOACK")) {
      i += 1;
    } else {
      return unknown();  // an option this parser does not know
    }
  }
  throw InvalidArgument(
      fmt::format("{} without STREAMS: name the streams and their IDs after the options "
                  "(... STREAMS key1 key2 id1 id2)",
                  shown(argv.front())));
}

// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
// [ALPHA] [STORE destination]: the key, and the destination of the last STORE
// (the one the server uses). BY and GET patterns are not keys.
CommandKeys sort_keys(std::span<const std::string_view> argv) {
  CommandKeys result = keys(argv.size(), 1, 2);
  std::size_t store = 0;
  std::size_t i = 2;
  while (i < argv.size()) {
    const std::string_view token = argv[i];
    if (equals_upper(token, "BY") || equals_upper(token, "GET")) {
      i += 2;
    } else if (equals_upper(token, "LIMIT")) {
      i += 3;
    } else if (equals_upper(token, "ASC") || equals_upper(token, "DESC") ||
               equals_upper(token, "ALPHA")) {
      i += 1;
    } else if (equals_upper(token, "STORE")) {
      if (i + 1 < argv.size()) store = i + 1;
      i += 2;
    } else {
      return unknown();
    }
  }
  if (store != 0) add_range(result, argv.size(), store, store + 1);
  return result;
}

// Adds keys one by one and throws at the first that hashes elsewhere.
class SlotOfKeys {
 public:
  explicit SlotOfKeys(std::string_view command) : command_(command) {}

  void add(std::string_view key) {
    const int slot = key_slot(key);
    if (slot_ < 0) {
      slot_ = slot;
      first_key_ = key;
      return;
    }
    if (slot == slot_) return;
    throw InvalidArgument(fmt::format(
        "CROSSSLOT: {} touches the keys '{}' (slot {}) and '{}' (slot {}), which a Redis "
        "Cluster keeps in different hash slots, and one command may only touch keys of one "
        "slot; give its keys a shared hash tag, e.g. '{{order42}}:a' and '{{order42}}:b' (only "
        "the part inside the first {{...}} is hashed)",
        shown(command_), shown(first_key_), slot_, shown(key), slot));
  }
  // -1 until a key was added.
  [[nodiscard]] int slot() const noexcept { return slot_; }

 private:
  std::string_view command_;
  std::string_view first_key_;
  int slot_ = -1;
};

}  // namespace

std::size_t CommandKeys::count() const noexcept {
  std::size_t n = 0;
  for (std::uint8_t r = 0; r < range_count; ++r) {
    const KeyRange& range = ranges[r];
    if (range.end > range.begin) n += (range.end - range.begin + range.step - 1) / range.step;
  }
  return n;
}

CommandKeys command_keys(std::span<const std::string_view> argv) {
  if (argv.empty()) throw InvalidArgument("a Redis command needs at least its name");
  const Entry* entry = find_command(argv.front());
  if (entry == nullptr) return unknown();
  switch (entry->rule) {
    case Rule::kNone:
      return no_keys();
    case Rule::kRange:
      return range_keys(argv, *entry);
    case Rule::kNumkeys:
      return numkeys_keys(argv, *entry);
    case Rule::kSubcommand:
      return subcommand_keys(argv, *entry);
    case Rule::kXread:
      return stream_keys(argv, false);
    case Rule::kXreadgroup:
      return stream_keys(argv, true);
    case Rule::kSort:
      return sort_keys(argv);
    case Rule::kUnknown:
      return unknown();
  }
  return unknown();
}

std::optional<int> keys_slot(std::string_view command, std::span<const std::string_view> keys) {
  SlotOfKeys slot(command);
  for (const std::string_view key : keys) slot.add(key);
  if (slot.slot() < 0) return std::nullopt;
  return slot.slot();
}

CommandSlot command_slot(std::span<const std::string_view> argv) {
  const CommandKeys found = command_keys(argv);
  if (found.kind == KeysKind::kUnknown) return {SlotKind::kUnknown, -1};
  SlotOfKeys slot(argv.front());
  found.for_each_position([&](std::uint32_t i) { slot.add(argv[i]); });
  if (slot.slot() < 0) return {SlotKind::kAnyNode, -1};
  return {SlotKind::kSlot, slot.slot()};
}

}  // namespace prodsafe::redis::detail
