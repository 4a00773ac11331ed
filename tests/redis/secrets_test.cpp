// No password ever appears in an error message or a log line.
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/redis/client.hpp"
#include "support/log_capture.hpp"

namespace prodsafe::redis {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSecret = "s3cr3t-Pa55word";

TEST(SecretsTest, NoErrorTextOrLogLineContainsThePassword) {
  prodsafe::testing::LogCapture logs;
  embedded::RedisServer server({.config = {std::string("requirepass ") + kSecret,
                                           "user bob on >" + std::string(kSecret) + " ~* +@all"}});
  const std::string good =
      "redis://:" + std::string(kSecret) + "@127.0.0.1:" + std::to_string(server.port());
  const std::string acl =
      "redis://bob:" + std::string(kSecret) + "@127.0.0.1:" + std::to_string(server.port());
  std::vector<std::string> errors;
  auto collect = [&](auto&& action) {
    try {
      action();
      ADD_FAILURE() << "expected an error";
    } catch (const std::exception& error) {
      errors.emplace_back(error.what());
    }
  };
  const Options fast{.connect_timeout = 200ms,
                     .command_timeout = 200ms,
                     .pool_size = 1,
                     .pool_checkout_timeout = 100ms,
                     .reconnect_backoff_initial = 0ms};

  // Malformed URLs that carry the password.
  collect([&] { Client c(good + ":notaport"); });
  collect([&] { Client c("rediss://:" + std::string(kSecret) + "@h:notaport"); });
  collect([&] { Client c("redis://" + std::string(kSecret) + "@h"); });
  // Wrong user for the password, and a password sent to the wrong place.
  collect([&] {
    Client("redis://nobody:" + std::string(kSecret) + "@127.0.0.1:" + std::to_string(server.port()),
           fast)
        .ping();
  });
  // Reply errors, timeouts, exhaustion and dead servers on an authenticated client.
  Client client(acl, fast);
  collect([&] { client.command({"NOSUCHCOMMAND", "x"}); });
  collect([&] {
    auto held = client.pool().checkout();
    client.ping();
  });
  server.pause();
  collect([&] { client.ping(); });
  server.resume();
  Client fresh(good, fast);
  server.pause();
  collect([&] { fresh.ping(); });
  server.resume();
  server.kill();
  collect([&] { client.ping(); });
  collect([&] { Client(good, fast).ping(); });

  ASSERT_EQ(errors.size(), 10u);
  for (const std::string& text : errors) {
    EXPECT_EQ(text.find(kSecret), std::string::npos) << text;
  }
  EXPECT_FALSE(logs.lines().empty()) << "the failures above should have logged";
  EXPECT_EQ(logs.text().find(kSecret), std::string::npos) << logs.text();
}

}  // namespace
}  // namespace prodsafe::redis
