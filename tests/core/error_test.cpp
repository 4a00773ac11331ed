#include "prodsafe/core/error.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string_view>
#include <vector>

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

// Every ErrorCode: its name, the class that carries it, and whether that
// class says to retry. A code added without a row here fails the last loop.
TEST(ErrorTest, EveryCodeHasANameAClassAndARetryability) {
  struct Row {
    ErrorCode code;
    std::string_view name;
    std::function<void()> raise;
    bool retryable;
  };
  const std::vector<Row> rows = {
      {ErrorCode::kStoreUnavailable, "StoreUnavailable", [] { throw StoreUnavailable("x"); }, true},
      {ErrorCode::kTimeout, "Timeout", [] { throw Timeout("x"); }, true},
      {ErrorCode::kReplyError, "ReplyError", [] { throw ReplyError("ERR x", ""); }, false},
      {ErrorCode::kProtocolError, "ProtocolError", [] { throw ProtocolError("x"); }, false},
      {ErrorCode::kDecodeError, "DecodeError", [] { throw DecodeError("x"); }, false},
      {ErrorCode::kInvalidArgument, "InvalidArgument", [] { throw InvalidArgument("x"); }, false},
      {ErrorCode::kConflict, "Conflict", [] { throw Conflict("k", "x"); }, false},
      {ErrorCode::kAlreadyInProgress, "AlreadyInProgress",
       [] { throw AlreadyInProgress("k", std::chrono::milliseconds(5), "x"); }, true},
      {ErrorCode::kLeaseLost, "LeaseLost", [] { throw LeaseLost("k", 1, {}, "x"); }, false},
      {ErrorCode::kCardinalityViolation, "CardinalityViolation",
       [] { throw CardinalityViolation("m", "x"); }, false},
      {ErrorCode::kEffectFailed, "EffectFailed", [] { throw EffectFailed("k", "e", "x"); }, false},
      {ErrorCode::kEncodeError, "EncodeError", [] { throw EncodeError("x"); }, false},
      {ErrorCode::kResultUnavailable, "ResultUnavailable",
       [] { throw ResultUnavailable("k", "r", "x"); }, false},
      {ErrorCode::kIoError, "IoError", [] { throw IoError("x"); }, false},
      {ErrorCode::kConfigError, "ConfigError", [] { throw ConfigError("x"); }, false},
      {ErrorCode::kReplicationShortfall, "ReplicationShortfall",
       [] { throw ReplicationShortfall("x", 0, 1); }, true},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(to_string(row.code), row.name);
    try {
      row.raise();
      ADD_FAILURE() << row.name << " did not throw";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), row.code) << row.name;
      EXPECT_EQ(error.retryable(), row.retryable) << row.name;
    }
  }
  // The enum is dense from 0: the first value without a name ends it, and
  // every value before it has a row above.
  int count = 0;
  while (to_string(static_cast<ErrorCode>(count)) != "Unknown") ++count;
  EXPECT_EQ(count, static_cast<int>(rows.size())) << "an ErrorCode has no row in this test";
}

TEST(ErrorTest, AReplicationShortfallIsNotStoreUnavailable) {
  // The store answered: an effect configured to fail open must not run
  // unprotected because a replica was slow to acknowledge.
  try {
    throw ReplicationShortfall("claim acknowledged by 0 of 1 replicas", 0, 1);
  } catch (const StoreUnavailable&) {
    ADD_FAILURE() << "ReplicationShortfall caught as StoreUnavailable";
  } catch (const ReplicationShortfall& error) {
    EXPECT_TRUE(error.retryable());
    EXPECT_EQ(error.acknowledged(), 0);
    EXPECT_EQ(error.requested(), 1);
  }
}

TEST(ErrorTest, LocalFailuresAreNotStoreUnavailable) {
  // A full disk or a missing program is not an unreachable server: code that
  // catches StoreUnavailable to wait for Redis must not wait for these.
  try {
    throw IoError("cannot fsync /var/lib/journal: No space left on device");
  } catch (const StoreUnavailable&) {
    ADD_FAILURE() << "IoError caught as StoreUnavailable";
  } catch (const Error& error) {
    EXPECT_FALSE(error.retryable());
  }
  try {
    throw ConfigError("StatsD host 'statsd.invalid' does not resolve");
  } catch (const StoreUnavailable&) {
    ADD_FAILURE() << "ConfigError caught as StoreUnavailable";
  } catch (const Error& error) {
    EXPECT_FALSE(error.retryable());
  }
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
