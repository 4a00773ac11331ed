#include "support/redis_fixture.hpp"

namespace prodsafe::testing {

std::unique_ptr<embedded::RedisServer> RedisTest::server_;

void RedisTest::TearDownTestSuite() { server_.reset(); }

void RedisTest::SetUp() {
  if (!server_) server_ = std::make_unique<embedded::RedisServer>();
  if (!server_->running()) server_->restart();
  if (server_->paused()) server_->resume();
  make_client()->command({"FLUSHALL"});
}

embedded::RedisServer& RedisTest::server() { return *server_; }

redis::Options RedisTest::short_timeouts() {
  using std::chrono::milliseconds;
  return {.connect_timeout = milliseconds(500),
          .command_timeout = milliseconds(500),
          .pool_size = 4,
          .pool_checkout_timeout = milliseconds(500)};
}

std::unique_ptr<redis::Client> RedisTest::make_client(redis::Options options) {
  return std::make_unique<redis::Client>(server_->url(), std::move(options));
}

}  // namespace prodsafe::testing
