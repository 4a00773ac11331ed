#include "prodsafe/core/error.hpp"

#include <gtest/gtest.h>

namespace prodsafe {
namespace {

TEST(ErrorTest, CodesAndRetryability) {
  EXPECT_TRUE(StoreUnavailable("down").retryable());
  EXPECT_EQ(StoreUnavailable("down").code(), ErrorCode::kStoreUnavailable);
  EXPECT_TRUE(Timeout("slow").retryable());
  EXPECT_EQ(Timeout("slow").code(), ErrorCode::kTimeout);
  EXPECT_FALSE(InvalidArgument("bad").retryable());
  EXPECT_FALSE(ProtocolError("odd").retryable());
  EXPECT_FALSE(DecodeError("garbage").retryable());
}

TEST(ErrorTest, TimeoutIsCaughtAsStoreUnavailable) {
  try {
    throw Timeout("PING timed out");
  } catch (const StoreUnavailable& error) {
    EXPECT_EQ(error.code(), ErrorCode::kTimeout);
    EXPECT_STREQ(error.what(), "PING timed out");
  }
}

TEST(ErrorTest, ReplyErrorKeepsTheServerMessage) {
  const ReplyError error("WRONGTYPE Operation against a key holding the wrong kind of value",
                         "GET on redis://127.0.0.1:6379");
  EXPECT_EQ(error.prefix(), "WRONGTYPE");
  EXPECT_EQ(error.server_message(),
            "WRONGTYPE Operation against a key holding the wrong kind of value");
  EXPECT_NE(std::string(error.what()).find("GET on redis://127.0.0.1:6379"), std::string::npos);
  EXPECT_FALSE(error.retryable());
}

TEST(ErrorTest, TransientReplyErrorsAreRetryable) {
  for (const char* message :
       {"LOADING Redis is loading the dataset in memory", "BUSY Redis is busy running a script",
        "TRYAGAIN", "MASTERDOWN x", "READONLY You can't write against a read only replica.",
        "OOM command not allowed when used memory > 'maxmemory'.",
        "NOREPLICAS Not enough good replicas to write."}) {
    EXPECT_TRUE(ReplyError(message, "").retryable()) << message;
  }
  EXPECT_FALSE(ReplyError("ERR unknown command", "").retryable());
  EXPECT_FALSE(ReplyError("NOSCRIPT No matching script", "").retryable());
  EXPECT_FALSE(ReplyError("MISCONF Redis is configured to save RDB snapshots", "").retryable())
      << "a failing disk needs an operator";
}

TEST(ErrorTest, EveryCodeHasAName) {
  EXPECT_EQ(to_string(ErrorCode::kStoreUnavailable), "StoreUnavailable");
  EXPECT_EQ(to_string(ErrorCode::kCardinalityViolation), "CardinalityViolation");
  EXPECT_EQ(to_string(ErrorCode::kLeaseLost), "LeaseLost");
  EXPECT_EQ(to_string(ErrorCode::kEncodeError), "EncodeError");
  EXPECT_EQ(to_string(ErrorCode::kResultUnavailable), "ResultUnavailable");
}

TEST(ErrorTest, EncodeAndResultUnavailableAreNotRetryable) {
  EXPECT_FALSE(EncodeError("NaN").retryable());
  const ResultUnavailable error("effect:T:1", "invalid UTF-8", "gone");
  EXPECT_FALSE(error.retryable());
  EXPECT_EQ(error.key(), "effect:T:1");
  EXPECT_EQ(error.reason(), "invalid UTF-8");
}

}  // namespace
}  // namespace prodsafe
