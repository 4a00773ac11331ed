// What RedisEffectStore makes of the replies Redis hands back
// (src/idempotency/redis_effect_reply.hpp): a reply of the wrong shape (a
// proxy, another server, a truncated answer) is a ProtocolError, never a read
// past the end of the reply. Found by fuzz/effect_record_fuzz.cpp.
#include "redis_effect_reply.hpp"

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/reply.hpp"

namespace prodsafe::idempotency {
namespace {

using redis::Reply;

std::vector<Reply> hmget(std::size_t fields) {
  std::vector<Reply> values(fields, Reply::nil());
  if (fields > 0) values[0] = Reply::string("in_progress");
  if (fields > 1) values[1] = Reply::string("17");
  if (fields > 5) values[5] = Reply::string("1700000005000");
  return values;
}

std::vector<Reply> inspect_replies(std::size_t fields, Reply time) {
  return {Reply::status("hash"), Reply::array(hmget(fields)), Reply::integer(1000),
          std::move(time)};
}

Reply time_reply() { return Reply::array({Reply::string("1700000000"), Reply::string("5")}); }

TEST(RedisEffectReplyTest, AWholeInspectAnswerDecodes) {
  const auto record = detail::decode_inspect_replies("k", inspect_replies(7, time_reply()));
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, "in_progress");
  EXPECT_EQ(record->token, 17u);
  EXPECT_EQ(record->lease_remaining, std::chrono::milliseconds(5000));
}

// Before the fix each of these read past the end of a vector (ASan:
// heap-buffer-overflow).
TEST(RedisEffectReplyTest, AShortInspectAnswerIsAProtocolError) {
  std::vector<Reply> replies = inspect_replies(7, time_reply());
  replies.resize(2);
  EXPECT_THROW((void)detail::decode_inspect_replies("k", replies), ProtocolError);
  EXPECT_THROW((void)detail::decode_inspect_replies("k", {Reply::status("hash")}), ProtocolError);
  EXPECT_THROW((void)detail::decode_inspect_replies("k", {}), ProtocolError);
}

TEST(RedisEffectReplyTest, TooFewRecordFieldsAreAProtocolError) {
  EXPECT_THROW((void)detail::decode_inspect_replies("k", inspect_replies(6, time_reply())),
               ProtocolError);
  EXPECT_THROW((void)detail::decode_inspect_replies("k", inspect_replies(1, time_reply())),
               ProtocolError);
}

TEST(RedisEffectReplyTest, AShortTimeReplyIsAProtocolError) {
  EXPECT_THROW((void)detail::decode_inspect_replies(
                   "k", inspect_replies(7, Reply::array({Reply::string("1700000000")}))),
               ProtocolError);
}

}  // namespace
}  // namespace prodsafe::idempotency

namespace prodsafe::idempotency::detail {
namespace {

TEST(RedisVersionTest, ComparesMajorThenMinor) {
  EXPECT_TRUE(redis_version_at_least("7.2.0", 7, 2));
  EXPECT_TRUE(redis_version_at_least("7.2.4", 7, 2));
  EXPECT_TRUE(redis_version_at_least("7.10.1", 7, 2));
  EXPECT_TRUE(redis_version_at_least("8.0.0", 7, 2));
  EXPECT_TRUE(redis_version_at_least("255.255.255", 7, 2));  // an unstable build
  EXPECT_FALSE(redis_version_at_least("7.0.15", 7, 2));
  EXPECT_FALSE(redis_version_at_least("7.1.242", 7, 2));
  EXPECT_FALSE(redis_version_at_least("6.2.14", 7, 2));
  EXPECT_TRUE(redis_version_at_least("7", 7, 0));
  EXPECT_FALSE(redis_version_at_least("7", 7, 2));
  EXPECT_FALSE(redis_version_at_least("unknown", 7, 2));
  EXPECT_FALSE(redis_version_at_least("", 7, 2));
}

}  // namespace
}  // namespace prodsafe::idempotency::detail
