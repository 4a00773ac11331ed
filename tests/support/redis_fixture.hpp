// Test-only helpers: a GoogleTest fixture with a private redis-server shared by
// the tests of one suite (one process, since ctest runs each test alone).
#pragma once

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/redis/client.hpp"

namespace prodsafe::testing {

class RedisTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite();
  // Starts the suite's server on first use (a failure to start fails the
  // test rather than skipping it), revives it if an earlier test killed or
  // paused it, and empties it.
  void SetUp() override;

  static embedded::RedisServer& server();
  // A client with short timeouts, so a failing test fails fast.
  static std::unique_ptr<redis::Client> make_client(redis::Options options = short_timeouts());
  static redis::Options short_timeouts();

 private:
  static std::unique_ptr<embedded::RedisServer> server_;
};

}  // namespace prodsafe::testing
