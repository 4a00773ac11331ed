// Which arguments of a Redis command are keys, and the one hash slot they
// share: what a Redis Cluster router needs to pick a node before it sends
// anything.
//
// command_keys() knows the commands prodsafe and its users commonly send
// (strings, hashes, lists, sets, sorted sets, streams, HyperLogLog, geo,
// scripts and functions, transactions) and the keyless ones (PING, INFO,
// SCRIPT ..., CLUSTER ..., PUBLISH, WAIT, ...). For any other command, or a
// form it cannot parse with certainty, it says kUnknown: ask the server with
// COMMAND GETKEYS. Shard channels (SPUBLISH, SSUBSCRIBE, SUNSUBSCRIBE) count
// as keys: a cluster routes them by their slot. Classic pub/sub channels
// (PUBLISH, SUBSCRIBE) do not: they reach every node.
//
// An argument list shorter than the command's key positions is not an error
// here: the missing keys are simply absent (a bare "GET" has no key), and the
// server answers the arity error.
//
// Thread safety: the functions are pure.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace prodsafe::redis::detail {

enum class KeysKind : std::uint8_t {
  kKeys,     // the keys are at positions(); there may be none (EVAL s 0, bare GET)
  kNoKeys,   // a command that never takes keys (PING, INFO, PUBLISH, MULTI, ...)
  kUnknown,  // not known here: ask the server (COMMAND GETKEYS)
};

// Argument positions begin, begin + step, ... below end (indexes into argv).
struct KeyRange {
  std::uint32_t begin = 0;
  std::uint32_t end = 0;
  std::uint32_t step = 1;
};

struct CommandKeys {
  KeysKind kind = KeysKind::kUnknown;
  // Up to two ranges of key positions (ZUNIONSTORE's destination, then its
  // sources; SORT's key, then its STORE destination), in argv order.
  std::array<KeyRange, 2> ranges{};
  std::uint8_t range_count = 0;

  // Calls f(position) for each key position, in order.
  template <typename F>
  void for_each_position(F&& f) const {
    for (std::uint8_t r = 0; r < range_count; ++r) {
      for (std::uint32_t i = ranges[r].begin; i < ranges[r].end; i += ranges[r].step) f(i);
    }
  }
  [[nodiscard]] std::size_t count() const noexcept;
};

// The key positions of `argv` (the command name, then its arguments); names
// match in any case. Throws InvalidArgument when argv is empty, or when a
// count of keys the command carries (EVAL's numkeys, ZUNIONSTORE's, LMPOP's,
// ...) is not a number, is negative or exceeds the arguments that follow, or
// when XREAD/XREADGROUP have no STREAMS or a different number of stream keys
// and IDs. For the
// commands listed in the .cpp, allocates nothing: a switch on the name's
// length, then a character compare.
[[nodiscard]] CommandKeys command_keys(std::span<const std::string_view> argv);

// The one slot of `keys`, the keys of `command` (for the error message);
// nullopt when there are none. Throws InvalidArgument when two keys hash to
// different slots (the server would answer CROSSSLOT), naming the command,
// two such keys and their slots, and telling to give them a shared hash tag.
[[nodiscard]] std::optional<int> keys_slot(std::string_view command,
                                           std::span<const std::string_view> keys);

enum class SlotKind : std::uint8_t {
  kSlot,     // every key is in `slot`: send to the master of that slot
  kAnyNode,  // no key (a keyless command, or EVAL with 0 keys): any node will do
  kUnknown,  // command_keys() says kUnknown: ask the server (COMMAND GETKEYS)
};

struct CommandSlot {
  SlotKind kind = SlotKind::kUnknown;
  int slot = -1;  // in [0, kClusterSlots) for kSlot, else -1
};

// command_keys(argv), then the slot its keys share. Throws what
// command_keys() throws, and InvalidArgument when the keys span slots (as
// keys_slot()), before anything is sent.
[[nodiscard]] CommandSlot command_slot(std::span<const std::string_view> argv);

}  // namespace prodsafe::redis::detail
