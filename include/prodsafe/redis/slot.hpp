// Redis Cluster's key-to-slot mapping: a key belongs to one of kClusterSlots
// hash slots, CRC16 (XMODEM) of the key modulo 16384, as the Redis Cluster
// specification defines it, hash tags included. Keys that must be touched by
// one command or script on a cluster must map to one slot: give them a shared
// hash tag, e.g. "order:{42}:claim" and "order:{42}:result".
//
// Thread safety: the functions are pure.
#pragma once

#include <cstdint>
#include <string_view>

namespace prodsafe::redis {

// The number of hash slots of a Redis Cluster.
inline constexpr int kClusterSlots = 16384;

// CRC16 as Redis Cluster uses it (XMODEM: polynomial 0x1021, initial value 0,
// no reflection, no final xor). crc16("123456789") == 0x31C3.
[[nodiscard]] std::uint16_t crc16(std::string_view data) noexcept;

// The part of `key` that is hashed: the hash tag when the key has one (the
// characters between the first '{' and the first '}' after it, when there is
// at least one), else the whole key. "{user1000}.following" -> "user1000";
// "foo{}{bar}" -> the whole key (the first tag is empty); "foo{{bar}}" ->
// "{bar".
[[nodiscard]] std::string_view hashed_part(std::string_view key) noexcept;

// The key's hash slot, in [0, kClusterSlots): crc16(hashed_part(key)) mod
// 16384. Matches CLUSTER KEYSLOT for any bytes, including empty keys.
[[nodiscard]] int key_slot(std::string_view key) noexcept;

}  // namespace prodsafe::redis
