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

constexpr Entry none(std::string_view word) { return {word, Rule::kNone}; }
constexpr Entry key1(std::string_view word) { return {word, Rule::kRange, 1, 1, 1}; }
constexpr Entry key1and2(std::string_view word) { return {word, Rule::kRange, 1, 2, 1}; }
constexpr Entry all_keys(std::string_view word) { return {word, Rule::kRange, 1, -1, 1}; }
constexpr Entry numkeys(std::string_view word, std::int8_t at, std::string_view usage,
                        std::int8_t destination = 0) {
  return {word, Rule::kNumkeys, at, destination, 1, usage};
}
constexpr Entry rule(std::string_view word, Rule r) { return {word, r}; }

constexpr Entry kCommands[] = {
    // Keyless. PUBLISH/SUBSCRIBE channels are cluster-wide, not keys; SCRIPT,
    // FUNCTION, CLUSTER, CONFIG, CLIENT, ... take no key in any subcommand.
    none("PING"),
    none("ECHO"),
    none("INFO"),
    none("TIME"),
    none("DBSIZE"),
    none("LASTSAVE"),
    none("ROLE"),
    none("FLUSHALL"),
    none("FLUSHDB"),
    none("RANDOMKEY"),
    none("KEYS"),
    none("SCAN"),
    none("PUBLISH"),
    none("PUBSUB"),
    none("SUBSCRIBE"),
    none("PSUBSCRIBE"),
    none("UNSUBSCRIBE"),
    none("PUNSUBSCRIBE"),
    none("SCRIPT"),
    none("FUNCTION"),
    none("CLUSTER"),
    none("CONFIG"),
    none("CLIENT"),
    none("COMMAND"),
    none("WAIT"),
    none("WAITAOF"),
    none("MULTI"),
    none("EXEC"),
    none("DISCARD"),
    none("UNWATCH"),
    none("READONLY"),
    none("READWRITE"),
    none("ASKING"),
    none("HELLO"),
    none("AUTH"),
    none("SELECT"),
    none("QUIT"),
    none("RESET"),
    none("SLOWLOG"),
    none("LATENCY"),
    none("ACL"),
    none("SAVE"),
    none("BGSAVE"),
    none("BGREWRITEAOF"),
    none("LOLWUT"),
    none("MONITOR"),
    none("SWAPDB"),
    none("SHUTDOWN"),
    none("REPLICAOF"),
    none("SLAVEOF"),
    none("FAILOVER"),
    none("MODULE"),
    // Strings and generic single-key commands.
    key1("GET"),
    key1("SET"),
    key1("SETNX"),
    key1("SETEX"),
    key1("PSETEX"),
    key1("APPEND"),
    key1("STRLEN"),
    key1("GETDEL"),
    key1("GETEX"),
    key1("GETSET"),
    key1("GETRANGE"),
    key1("SETRANGE"),
    key1("SUBSTR"),
    key1("INCR"),
    key1("DECR"),
    key1("INCRBY"),
    key1("DECRBY"),
    key1("INCRBYFLOAT"),
    key1("GETBIT"),
    key1("SETBIT"),
    key1("BITCOUNT"),
    key1("BITPOS"),
    key1("BITFIELD"),
    key1("BITFIELD_RO"),
    key1("EXPIRE"),
    key1("PEXPIRE"),
    key1("EXPIREAT"),
    key1("PEXPIREAT"),
    key1("EXPIRETIME"),
    key1("PEXPIRETIME"),
    key1("PERSIST"),
    key1("TTL"),
    key1("PTTL"),
    key1("TYPE"),
    key1("DUMP"),
    key1("RESTORE"),
    key1("RESTORE-ASKING"),
    key1("SORT_RO"),
    // Hashes.
    key1("HSET"),
    key1("HSETNX"),
    key1("HGET"),
    key1("HMSET"),
    key1("HMGET"),
    key1("HGETALL"),
    key1("HDEL"),
    key1("HLEN"),
    key1("HSTRLEN"),
    key1("HKEYS"),
    key1("HVALS"),
    key1("HEXISTS"),
    key1("HINCRBY"),
    key1("HINCRBYFLOAT"),
    key1("HRANDFIELD"),
    key1("HSCAN"),
    // Lists.
    key1("LPUSH"),
    key1("RPUSH"),
    key1("LPUSHX"),
    key1("RPUSHX"),
    key1("LPOP"),
    key1("RPOP"),
    key1("LLEN"),
    key1("LRANGE"),
    key1("LINDEX"),
    key1("LSET"),
    key1("LINSERT"),
    key1("LREM"),
    key1("LTRIM"),
    key1("LPOS"),
    // Sets.
    key1("SADD"),
    key1("SREM"),
    key1("SMEMBERS"),
    key1("SISMEMBER"),
    key1("SMISMEMBER"),
    key1("SCARD"),
    key1("SPOP"),
    key1("SRANDMEMBER"),
    key1("SSCAN"),
    // Sorted sets.
    key1("ZADD"),
    key1("ZREM"),
    key1("ZCARD"),
    key1("ZCOUNT"),
    key1("ZINCRBY"),
    key1("ZRANGE"),
    key1("ZRANGEBYSCORE"),
    key1("ZRANGEBYLEX"),
    key1("ZREVRANGE"),
    key1("ZREVRANGEBYSCORE"),
    key1("ZREVRANGEBYLEX"),
    key1("ZRANK"),
    key1("ZREVRANK"),
    key1("ZSCORE"),
    key1("ZMSCORE"),
    key1("ZREMRANGEBYSCORE"),
    key1("ZREMRANGEBYRANK"),
    key1("ZREMRANGEBYLEX"),
    key1("ZLEXCOUNT"),
    key1("ZPOPMIN"),
    key1("ZPOPMAX"),
    key1("ZRANDMEMBER"),
    key1("ZSCAN"),
    // Streams, HyperLogLog, geo.
    key1("XADD"),
    key1("XRANGE"),
    key1("XREVRANGE"),
    key1("XLEN"),
    key1("XDEL"),
    key1("XTRIM"),
    key1("XACK"),
    key1("XCLAIM"),
    key1("XAUTOCLAIM"),
    key1("XPENDING"),
    key1("XSETID"),
    key1("PFADD"),
    key1("GEOADD"),
    key1("GEODIST"),
    key1("GEOHASH"),
    key1("GEOPOS"),
    key1("GEOSEARCH"),
    key1("GEORADIUS_RO"),
    key1("GEORADIUSBYMEMBER_RO"),
    // A shard channel routes by its slot like a key.
    key1("SPUBLISH"),
    all_keys("SSUBSCRIBE"),
    all_keys("SUNSUBSCRIBE"),
    // Every argument a key.
    all_keys("DEL"),
    all_keys("UNLINK"),
    all_keys("EXISTS"),
    all_keys("MGET"),
    all_keys("TOUCH"),
    all_keys("WATCH"),
    all_keys("SINTER"),
    all_keys("SUNION"),
    all_keys("SDIFF"),
    all_keys("SINTERSTORE"),
    all_keys("SUNIONSTORE"),
    all_keys("SDIFFSTORE"),
    all_keys("PFCOUNT"),
    all_keys("PFMERGE"),
    // key value key value ...
    {"MSET", Rule::kRange, 1, -1, 2},
    {"MSETNX", Rule::kRange, 1, -1, 2},
    // Two keys: source and destination.
    key1and2("RENAME"),
    key1and2("RENAMENX"),
    key1and2("RPOPLPUSH"),
    key1and2("LMOVE"),
    key1and2("BLMOVE"),
    key1and2("BRPOPLPUSH"),
    key1and2("SMOVE"),
    key1and2("COPY"),
    key1and2("ZRANGESTORE"),
    key1and2("GEOSEARCHSTORE"),
    key1and2("LCS"),
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
    rule("OBJECT", Rule::kSubcommand),
    rule("MEMORY", Rule::kSubcommand),
    rule("XINFO", Rule::kSubcommand),
    rule("XGROUP", Rule::kSubcommand),
    rule("XREAD", Rule::kXread),
    rule("XREADGROUP", Rule::kXreadgroup),
    rule("SORT", Rule::kSort),
    // Known, but their keys hide among options (GEORADIUS's STORE and
    // STOREDIST, MIGRATE's KEYS): the server says.
    rule("GEORADIUS", Rule::kUnknown),
    rule("GEORADIUSBYMEMBER", Rule::kUnknown),
    rule("MIGRATE", Rule::kUnknown),
};

constexpr std::size_t kCommandCount = std::size(kCommands);

constexpr bool shorter(const Entry& a, const Entry& b) {
  return a.word.size() != b.word.size() ? a.word.size() < b.word.size() : a.word < b.word;
}

// kCommands ordered by name length, then name.
constexpr std::array<Entry, kCommandCount> kByLength = [] {
  std::array<Entry, kCommandCount> sorted{};
  std::copy(std::begin(kCommands), std::end(kCommands), sorted.begin());
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
