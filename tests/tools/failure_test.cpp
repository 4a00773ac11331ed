// tools/prodsafe/failure.hpp: which exit code each error gives a command.
#include "failure.hpp"

#include <filesystem>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::cli {
namespace {

int exit_code_of(const std::exception& error) { return failure_of(error).exit_code; }

// Exit 2 is "Redis could not be reached, or refused us": a server that turns
// the client away (authentication, ACL) or is not ready yet. A reply that
// says a command or a key was wrong is an ordinary failure.
TEST(CliFailureTest, OnlyRefusingRepliesAreUnreachable) {
  for (const char* refused :
       {"NOAUTH Authentication required.",
        "WRONGPASS invalid username-password pair or user is disabled.",
        "NOPERM this user has no permissions to run the 'config' command",
        "LOADING Redis is loading the dataset in memory", "MASTERDOWN Link with MASTER is down"}) {
    SCOPED_TRACE(refused);
    const Failure failure = failure_of(ReplyError(refused, "PING"));
    EXPECT_EQ(failure.exit_code, kExitUnreachable);
    EXPECT_EQ(failure.kind, "unreachable");
  }
  for (const char* wrong : {"WRONGTYPE Operation against a key holding the wrong kind of value",
                            "ERR syntax error", "NOSCRIPT No matching script"}) {
    SCOPED_TRACE(wrong);
    const Failure failure = failure_of(ReplyError(wrong, "GET prodsafe:x"));
    EXPECT_EQ(failure.exit_code, kExitFailed);
    EXPECT_EQ(failure.kind, "failed");
    EXPECT_EQ(failure.code, "ReplyError");
  }
}

TEST(CliFailureTest, EachErrorClassHasItsExitCode) {
  EXPECT_EQ(exit_code_of(StoreUnavailable("connection refused")), kExitUnreachable);
  EXPECT_EQ(exit_code_of(ProtocolError("not RESP")), kExitUnreachable);
  EXPECT_EQ(exit_code_of(IoError("/x: No space left on device")), kExitIo);
  EXPECT_EQ(exit_code_of(std::filesystem::filesystem_error(
                "mkdir", std::make_error_code(std::errc::permission_denied))),
            kExitIo);
  EXPECT_EQ(exit_code_of(ConfigError("redis-server is not installed")), kExitConfig);
  EXPECT_EQ(exit_code_of(DecodeError("not a record")), kExitFailed);
  EXPECT_EQ(exit_code_of(std::runtime_error("other")), kExitFailed);
}

}  // namespace
}  // namespace prodsafe::cli
