// What the Redis breaker store makes of the replies Redis hands back
// (src/breaker/breaker_reply.hpp). Found by fuzz/breaker_record_fuzz.cpp.
#include "breaker_reply.hpp"

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/reply.hpp"

namespace prodsafe::breaker {
namespace {

using redis::Reply;

// Before the fix, a bare "CORRUPT" (no reason after it) threw std::out_of_range
// from substr(8): not a prodsafe::Error, so callers that catch those let it
// through and the breaker's fallback to its local view never ran.
TEST(BreakerReplyTest, ACorruptReplyWithoutAReasonIsADecodeError) {
  EXPECT_THROW(detail::rethrow_breaker_error("c", ReplyError("CORRUPT", "breaker")), DecodeError);
  EXPECT_THROW(detail::rethrow_breaker_error("c", ReplyError("CORRUPT ", "breaker")), DecodeError);
  try {
    detail::rethrow_breaker_error("c", ReplyError("CORRUPT unknown circuit state X", "breaker"));
    FAIL() << "no exception";
  } catch (const DecodeError& error) {
    EXPECT_NE(std::string(error.what()).find("unknown circuit state X"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW(detail::rethrow_breaker_error("c", ReplyError("BUSY script", "breaker")),
               ReplyError);
}

TEST(BreakerReplyTest, AReplyOfAnotherShapeIsAProtocolError) {
  EXPECT_THROW((void)detail::decode_breaker_reply("c", Reply::integer(1)), ProtocolError);
  EXPECT_THROW((void)detail::decode_breaker_reply("c", Reply::array({Reply::string("OPEN")})),
               ProtocolError);
  std::vector<Reply> parts(11, Reply::integer(0));
  parts[0] = Reply::string("FORCED_OPEN");
  parts[1] = Reply::string("CLOSED");
  parts[7] = Reply::integer(30000);
  parts[9] = Reply::string("ops:alice");
  parts[10] = Reply::integer(1795882536694);
  const Snapshot snapshot = detail::decode_breaker_reply("c", Reply::array(parts));
  EXPECT_EQ(snapshot.state, State::kForcedOpen);
  EXPECT_EQ(snapshot.retry_after, std::chrono::milliseconds(30000));
  EXPECT_EQ(snapshot.forced_by, "ops:alice");
  EXPECT_EQ(snapshot.forced_at, std::chrono::milliseconds(1795882536694));
  // A script of the version before forced_by: another shape.
  parts.resize(9);
  EXPECT_THROW((void)detail::decode_breaker_reply("c", Reply::array(parts)), ProtocolError);
}

Reply message(std::string_view payload) {
  return Reply::array({Reply::string("message"), Reply::string("circuit:c:events"),
                       Reply::string(std::string(payload))});
}

TEST(BreakerReplyTest, ATransitionMessageCarriesItsStateBreakAndTrips) {
  const auto opened = detail::decode_breaker_event(message("OPEN:30000:2"));
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(opened->state, State::kOpen);
  EXPECT_EQ(opened->retry_after, std::chrono::milliseconds(30000));
  EXPECT_EQ(opened->trips, 2u);
  // From a script that did not say the trips: the watcher must not invent them.
  const auto older = detail::decode_breaker_event(message("OPEN:30000"));
  ASSERT_TRUE(older.has_value());
  EXPECT_EQ(older->retry_after, std::chrono::milliseconds(30000));
  EXPECT_FALSE(older->trips.has_value());
  EXPECT_FALSE(detail::decode_breaker_event(message("OPEN:30000:2x"))->trips.has_value());
  EXPECT_EQ(detail::decode_breaker_event(message("CLOSED"))->state, State::kClosed);
  EXPECT_FALSE(detail::decode_breaker_event(message("SIDEWAYS:0:1")).has_value());
  EXPECT_FALSE(detail::decode_breaker_event(Reply::string("OPEN:1:1")).has_value());
}

}  // namespace
}  // namespace prodsafe::breaker
