#include "prodsafe/redis/reply.hpp"

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::redis {
namespace {

TEST(ReplyTest, TypedAccessorsReturnTheirValue) {
  EXPECT_EQ(Reply::string("v").str(), "v");
  EXPECT_EQ(Reply::status("OK").str(), "OK");
  EXPECT_EQ(Reply::integer(42).integer(), 42);
  EXPECT_EQ(Reply::array({Reply::integer(1), Reply::nil()}).array().size(), 2u);
  EXPECT_EQ(Reply::nil().optional_str(), std::nullopt);
  EXPECT_EQ(Reply::string("x").optional_str(), "x");
}

TEST(ReplyTest, WrongTypeThrowsProtocolErrorNamingBoth) {
  try {
    (void)Reply::integer(7).str();
    FAIL() << "no exception";
  } catch (const ProtocolError& error) {
    EXPECT_STREQ(error.what(), "expected a string reply from Redis, got (integer) 7");
  }
  EXPECT_THROW((void)Reply::string("7").integer(), ProtocolError);
  EXPECT_THROW((void)Reply::nil().array(), ProtocolError);
  EXPECT_THROW((void)Reply::nil().str(), ProtocolError);
}

TEST(ReplyTest, CheckThrowsErrorRepliesWithContext) {
  const Reply error = Reply::error("WRONGTYPE Operation against a key");
  EXPECT_TRUE(error.is_error());
  try {
    error.check("GET k");
    FAIL() << "no exception";
  } catch (const ReplyError& e) {
    EXPECT_EQ(e.prefix(), "WRONGTYPE");
    EXPECT_STREQ(e.what(), "GET k: Redis replied: WRONGTYPE Operation against a key");
  }
  EXPECT_NO_THROW(Reply::status("OK").check());
}

TEST(ReplyTest, DebugStringShortensLongValues) {
  EXPECT_EQ(Reply::string(std::string(100, 'a')).debug_string(),
            "(string) \"" + std::string(64, 'a') + "...\"");
  EXPECT_EQ(Reply::nil().debug_string(), "nil");
  EXPECT_EQ(Reply::array({}).debug_string(), "(array of 0)");
}

}  // namespace
}  // namespace prodsafe::redis
