// redis::Options are checked where they are accepted, before any connection
// is opened: no server is needed.
#include "prodsafe/redis/options.hpp"

#include <chrono>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/connection.hpp"
#include "prodsafe/redis/endpoint.hpp"

namespace prodsafe::redis {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Nothing listens on port 1: a client that got as far as connecting would
// fail with StoreUnavailable, not InvalidArgument.
constexpr const char* kNowhere = "redis://127.0.0.1:1";

// What making a Client with `options` and sending one command throws.
std::string refusal(const Options& options) {
  try {
    Client client(kNowhere, options);
    client.ping();
  } catch (const InvalidArgument& error) {
    return error.what();
  } catch (const std::exception& error) {
    return std::string("not InvalidArgument: ") + error.what();
  }
  return "accepted";
}

TEST(RedisOptionsTest, ANegativeCommandTimeoutIsRefusedNamingTheFieldAndRange) {
  // It used to reach setsockopt() and make every command time out at once.
  EXPECT_THAT(refusal({.command_timeout = -1ms}),
              AllOf(HasSubstr("redis::Options::command_timeout"),
                    HasSubstr("between 0 (wait forever) and 24 h"), HasSubstr("-1 ms")));
}

TEST(RedisOptionsTest, AnOverflowingPoolCheckoutTimeoutIsRefused) {
  // now + milliseconds::max() overflowed into a deadline in the past: every
  // checkout that had to wait timed out at once.
  EXPECT_THAT(refusal({.pool_checkout_timeout = milliseconds::max()}),
              AllOf(HasSubstr("redis::Options::pool_checkout_timeout"),
                    HasSubstr("between 0 (wait forever) and 24 h")));
  EXPECT_THAT(refusal({.pool_checkout_timeout = -5ms}),
              HasSubstr("redis::Options::pool_checkout_timeout"));
}

TEST(RedisOptionsTest, EveryOtherDurationIsRangeChecked) {
  EXPECT_THAT(refusal({.connect_timeout = -1ms}), HasSubstr("redis::Options::connect_timeout"));
  EXPECT_THAT(refusal({.connect_timeout = 24h + 1ms}),
              HasSubstr("redis::Options::connect_timeout"));
  EXPECT_THAT(refusal({.command_timeout = milliseconds::max()}),
              HasSubstr("redis::Options::command_timeout"));
  EXPECT_THAT(refusal({.reconnect_backoff_initial = -1ms}),
              AllOf(HasSubstr("redis::Options::reconnect_backoff_initial"),
                    HasSubstr("between 0 (no backoff) and 24 h")));
  EXPECT_THAT(refusal({.reconnect_backoff_max = milliseconds::max()}),
              AllOf(HasSubstr("redis::Options::reconnect_backoff_max"), HasSubstr("24 h")));
}

TEST(RedisOptionsTest, TheBoundsThemselvesAreAccepted) {
  // Valid options get as far as connecting (to nothing).
  for (const Options& options : {Options{.connect_timeout = 0ms,
                                .command_timeout = 0ms,
                                .pool_checkout_timeout = 0ms,
                                .reconnect_backoff_initial = 0ms,
                                .reconnect_backoff_max = 0ms},
                                 Options{.connect_timeout = 200ms,
                                 .command_timeout = 24h,
                                 .pool_checkout_timeout = 24h,
                                 .reconnect_backoff_initial = 24h,
                                 .reconnect_backoff_max = 24h}}) {
    EXPECT_THAT(refusal(options), HasSubstr("not InvalidArgument: cannot connect"));
  }
}

TEST(RedisOptionsTest, AConnectionMadeWithoutThePoolChecksToo) {
  std::string what = "accepted";
  try {
    Connection connection(parse_url(kNowhere), Options{.command_timeout = -1ms});
  } catch (const InvalidArgument& error) {
    what = error.what();
  } catch (const std::exception& error) {
    what = std::string("not InvalidArgument: ") + error.what();
  }
  EXPECT_THAT(what, HasSubstr("redis::Options::command_timeout"));
}

TEST(RedisOptionsTest, ValidationIsAFunctionAnyoneCanCall) {
  EXPECT_NO_THROW(validate_options(Options{}));
  EXPECT_THROW(validate_options(Options{.pool_size = 0}), InvalidArgument);
  EXPECT_THROW(validate_options(Options{.pool_checkout_timeout = milliseconds::max()}),
               InvalidArgument);
}

}  // namespace
}  // namespace prodsafe::redis
