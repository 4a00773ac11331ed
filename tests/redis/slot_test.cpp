// key_slot(): CRC16 (XMODEM) and hash tags as the Redis Cluster specification
// defines them; no server needed (cluster_keyslot_test.cpp compares with a
// real one).
#include "prodsafe/redis/slot.hpp"

#include <cstdint>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace prodsafe::redis {
namespace {

// The specification's reference implementation, bit by bit: an independent
// check of the table-driven crc16().
std::uint16_t crc16_bitwise(std::string_view data) {
  std::uint16_t crc = 0;
  for (const char c : data) {
    crc ^= static_cast<std::uint16_t>(static_cast<unsigned char>(c) << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<std::uint16_t>(crc << 1);
    }
  }
  return crc;
}

TEST(SlotTest, Crc16MatchesTheSpecificationCheckValue) {
  // Redis Cluster specification, appendix A: "123456789" -> 0x31C3.
  EXPECT_EQ(crc16("123456789"), 0x31C3);
  EXPECT_EQ(crc16(""), 0);
}

TEST(SlotTest, Crc16TableAgreesWithTheBitwiseDefinition) {
  std::mt19937 random(20261128);
  std::uniform_int_distribution<int> length(0, 40);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 2000; ++i) {
    std::string data(static_cast<std::size_t>(length(random)), '\0');
    for (char& c : data) c = static_cast<char>(byte(random));
    ASSERT_EQ(crc16(data), crc16_bitwise(data)) << "input of " << data.size() << " bytes";
  }
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    ASSERT_EQ(crc16(one), crc16_bitwise(one)) << "byte " << b;
  }
}

TEST(SlotTest, KnownSlotsFromTheRedisDocumentation) {
  // CLUSTER KEYSLOT's documented examples, and the slot of "foo" every
  // cluster tutorial shows in its MOVED reply.
  EXPECT_EQ(key_slot("somekey"), 11058);
  EXPECT_EQ(key_slot("foo{hash_tag}"), 2515);
  EXPECT_EQ(key_slot("foo"), 12182);
}

TEST(SlotTest, SlotIsCrc16ModuloTheSlotCount) {
  EXPECT_EQ(kClusterSlots, 16384);
  for (const std::string_view key : {"a", "user:1000", "123456789", "", "\xff\xfe"}) {
    EXPECT_EQ(key_slot(key), crc16_bitwise(key) % 16384) << key;
    EXPECT_GE(key_slot(key), 0);
    EXPECT_LT(key_slot(key), kClusterSlots);
  }
}

TEST(SlotTest, HashTagsFollowTheSpecification) {
  // The specification's examples.
  EXPECT_EQ(hashed_part("{user1000}.following"), "user1000");
  EXPECT_EQ(hashed_part("{user1000}.followers"), "user1000");
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(hashed_part("foo{}{bar}"), "foo{}{bar}");  // the first tag is empty: whole key
  EXPECT_EQ(hashed_part("foo{{bar}}zap"), "{bar");     // up to the first '}' after the '{'
  EXPECT_EQ(hashed_part("foo{bar}{zap}"), "bar");      // only the first tag counts
  // No tag at all.
  EXPECT_EQ(hashed_part("plain"), "plain");
  EXPECT_EQ(hashed_part("open{only"), "open{only");
  EXPECT_EQ(hashed_part("close}only{"), "close}only{");
  EXPECT_EQ(hashed_part("{}"), "{}");
  EXPECT_EQ(hashed_part("{"), "{");
  EXPECT_EQ(hashed_part(""), "");
  // A tag anywhere, of any bytes.
  EXPECT_EQ(hashed_part("a}b{c}d"), "c");
  EXPECT_EQ(hashed_part("x{ }"), " ");
  EXPECT_EQ(key_slot("effect:order:{42}:claim"), key_slot("42"));
  EXPECT_EQ(key_slot("foo{}{bar}"), crc16_bitwise("foo{}{bar}") % 16384);
}

}  // namespace
}  // namespace prodsafe::redis
