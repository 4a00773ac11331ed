#include "prodsafe/redis/connection_state.hpp"

namespace prodsafe::redis {
namespace {

constexpr std::string_view kTransaction =
    "run the transaction as a Pipeline (MULTI ... EXEC in one Client::pipeline call), or on a "
    "connection of its own from Client::dedicated_connection()";
constexpr std::string_view kWatch =
    "run WATCH, the reads and MULTI ... EXEC on a connection of its own from "
    "Client::dedicated_connection(), or make the read-modify-write a Lua script (redis::Script)";
constexpr std::string_view kSelect =
    "put the database in the URL (redis://host:port/1, or unix://...?db=1) and use one Client "
    "per database";
constexpr std::string_view kPubSub =
    "pub/sub needs a connection of its own: Client::dedicated_connection(), then "
    "Connection::subscribe() and Connection::next_message()";
constexpr std::string_view kReply =
    "a Client reads one reply per command; send commands whose replies you do not need in a "
    "Pipeline and ignore those replies";
constexpr std::string_view kOwnConnection =
    "run it on a connection of its own from Client::dedicated_connection()";
constexpr std::string_view kReset =
    "a pooled connection keeps the URL's database and user; to start afresh destroy the Client "
    "(its pool closes every connection), or use Client::dedicated_connection()";
constexpr std::string_view kCredentials =
    "put the user and password in the URL (redis://user:password@host:port); every connection "
    "authenticates with them when it opens";
constexpr std::string_view kHello =
    "connections speak RESP2 and authenticate with the URL's user and password "
    "(redis://user:password@host:port); put the credentials there";
constexpr std::string_view kQuit = "the Client closes its connections when it is destroyed";
constexpr std::string_view kMonitor =
    "MONITOR needs a connection of its own: Client::dedicated_connection(), then "
    "Connection::next_message()";

// `word` is the name Redis clients send (upper case); `name` the documented
// one ("CLIENT REPLY" for the word "REPLY" after CLIENT).
struct Entry {
  std::string_view word;
  std::string_view name;
  StateChange change;
  std::string_view advice;
};

// CLIENT itself: its subcommands decide (most leave the connection alone).
constexpr StateChange kSubcommand = StateChange::kNone;

constexpr Entry kLength4[] = {{"AUTH", "AUTH", StateChange::kLasting, kCredentials},
                              {"EXEC", "EXEC", StateChange::kEndMulti, kTransaction},
                              {"QUIT", "QUIT", StateChange::kLasting, kQuit},
                              {"SYNC", "SYNC", StateChange::kLasting, kOwnConnection}};
constexpr Entry kLength5[] = {{"MULTI", "MULTI", StateChange::kMulti, kTransaction},
                              {"WATCH", "WATCH", StateChange::kWatch, kWatch},
                              {"HELLO", "HELLO", StateChange::kLasting, kHello},
                              {"RESET", "RESET", StateChange::kLasting, kReset},
                              {"PSYNC", "PSYNC", StateChange::kLasting, kOwnConnection}};
constexpr Entry kLength6[] = {{"SELECT", "SELECT", StateChange::kLasting, kSelect},
                              {"CLIENT", "CLIENT", kSubcommand, {}},
                              {"ASKING", "ASKING", StateChange::kLasting, kOwnConnection}};
constexpr Entry kLength7[] = {{"DISCARD", "DISCARD", StateChange::kEndMulti, kTransaction},
                              {"MONITOR", "MONITOR", StateChange::kLasting, kMonitor},
                              {"UNWATCH", "UNWATCH", StateChange::kUnwatch, {}}};
constexpr Entry kLength8[] = {{"READONLY", "READONLY", StateChange::kLasting, kOwnConnection},
                              {"REPLCONF", "REPLCONF", StateChange::kLasting, kOwnConnection}};
constexpr Entry kLength9[] = {{"SUBSCRIBE", "SUBSCRIBE", StateChange::kLasting, kPubSub},
                              {"READWRITE", "READWRITE", StateChange::kLasting, kOwnConnection}};
constexpr Entry kLength10[] = {{"PSUBSCRIBE", "PSUBSCRIBE", StateChange::kLasting, kPubSub},
                               {"SSUBSCRIBE", "SSUBSCRIBE", StateChange::kLasting, kPubSub}};
constexpr Entry kLength11[] = {{"UNSUBSCRIBE", "UNSUBSCRIBE", StateChange::kLasting, kPubSub}};
constexpr Entry kLength12[] = {{"PUNSUBSCRIBE", "PUNSUBSCRIBE", StateChange::kLasting, kPubSub},
                               {"SUNSUBSCRIBE", "SUNSUBSCRIBE", StateChange::kLasting, kPubSub}};

constexpr Entry kClientSubcommands[] = {
    {"REPLY", "CLIENT REPLY", StateChange::kLasting, kReply},
    {"CACHING", "CLIENT CACHING", StateChange::kLasting, kOwnConnection},
    {"TRACKING", "CLIENT TRACKING", StateChange::kLasting, kOwnConnection},
    {"NO-TOUCH", "CLIENT NO-TOUCH", StateChange::kLasting, kOwnConnection}};

std::span<const Entry> commands_of_length(std::size_t length) noexcept {
  switch (length) {
    case 4:
      return kLength4;
    case 5:
      return kLength5;
    case 6:
      return kLength6;
    case 7:
      return kLength7;
    case 8:
      return kLength8;
    case 9:
      return kLength9;
    case 10:
      return kLength10;
    case 11:
      return kLength11;
    case 12:
      return kLength12;
    default:
      return {};
  }
}

constexpr char to_upper(char c) noexcept {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

// The entry whose word is `word` (any case), or nullptr.
const Entry* find(std::span<const Entry> entries, std::string_view word) noexcept {
  if (word.empty()) return nullptr;
  const char first = to_upper(word.front());
  for (const Entry& entry : entries) {
    if (entry.word.size() != word.size() || entry.word.front() != first) continue;
    bool equal = true;
    for (std::size_t i = 1; i < word.size() && equal; ++i) {
      equal = to_upper(word[i]) == entry.word[i];
    }
    if (equal) return &entry;
  }
  return nullptr;
}

}  // namespace

CommandState classify_command(std::span<const std::string_view> args) noexcept {
  if (args.empty()) return {};
  const Entry* entry = find(commands_of_length(args.front().size()), args.front());
  if (entry == nullptr) return {};
  if (entry->word == "CLIENT") {
    if (args.size() < 2) return {};
    entry = find(kClientSubcommands, args[1]);
    if (entry == nullptr) return {};
  }
  return {entry->change, entry->name, entry->advice};
}

}  // namespace prodsafe::redis
