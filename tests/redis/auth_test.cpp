// AUTH with a password, with an ACL user, and refused credentials.
#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/redis/client.hpp"

namespace prodsafe::redis {
namespace {

using namespace std::chrono_literals;

class AuthTest : public ::testing::Test {
 protected:
  // Started in SetUp, not SetUpTestSuite: a failure there fails the test
  // instead of skipping it.
  void SetUp() override {
    if (server_) return;
    server_ = std::make_unique<embedded::RedisServer>(embedded::RedisServerOptions{
        .config = {"requirepass default-secret-1", "user alice on >alice-secret-2 ~* +@all"}});
  }
  static void TearDownTestSuite() { server_.reset(); }

  static std::string url_with(std::string_view credentials) {
    return "redis://" + std::string(credentials) + "@127.0.0.1:" + std::to_string(server_->port());
  }

  static std::unique_ptr<embedded::RedisServer> server_;
};

std::unique_ptr<embedded::RedisServer> AuthTest::server_;

TEST_F(AuthTest, PasswordInUrl) {
  Client client(url_with(":default-secret-1"));
  EXPECT_EQ(client.ping(), "PONG");
}

TEST_F(AuthTest, AclUserInUrl) {
  Client client(url_with("alice:alice-secret-2"));
  EXPECT_EQ(client.command({"ACL", "WHOAMI"}).str(), "alice");
}

TEST_F(AuthTest, OptionsOverrideTheUrlCredentials) {
  Client client(server_->url(), {.user = "alice", .password = "alice-secret-2"});
  EXPECT_EQ(client.command({"ACL", "WHOAMI"}).str(), "alice");
}

TEST_F(AuthTest, WrongPasswordIsRefusedWithoutShowingIt) {
  Client client(url_with("alice:wrong-secret-3"));
  try {
    client.ping();
    FAIL() << "no exception";
  } catch (const ReplyError& error) {
    const std::string text = error.what();
    EXPECT_EQ(error.prefix(), "WRONGPASS");
    EXPECT_NE(text.find("AUTH to redis://alice:***@127.0.0.1"), std::string::npos) << text;
    EXPECT_EQ(text.find("wrong-secret-3"), std::string::npos) << text;
    EXPECT_FALSE(error.retryable());
  }
}

TEST_F(AuthTest, MissingPasswordGetsNoauth) {
  Client client(server_->url());
  try {
    client.ping();
    FAIL() << "no exception";
  } catch (const ReplyError& error) {
    EXPECT_EQ(error.prefix(), "NOAUTH");
  }
}

}  // namespace
}  // namespace prodsafe::redis
