// Writing to a Redis that has just died must not raise SIGPIPE: this binary
// leaves SIGPIPE at its default action (which kills the process), as a user's
// program may.
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/client.hpp"
#include "support/redis_fixture.hpp"

namespace prodsafe::redis {
namespace {

using namespace std::chrono_literals;
using SigpipeTest = prodsafe::testing::RedisTest;

TEST_F(SigpipeTest, KillingRedisDuringLargeWritesDoesNotKillTheProcess) {
  struct sigaction current {};
  ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &current), 0);
  ASSERT_EQ(current.sa_handler, SIG_DFL) << "this test needs SIGPIPE at its default action";

  auto client = make_client({.command_timeout = 2s, .pool_size = 4});
  const std::string value(8 << 20, 'v');  // larger than the socket buffers
  std::atomic<int> failures{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int i = 0; i < 4; ++i) {
    writers.emplace_back([&, i] {
      while (!stop) {
        try {
          client->set("big:" + std::to_string(i), value);
        } catch (const Error&) {
          ++failures;
          return;
        }
      }
    });
  }
  std::this_thread::sleep_for(300ms);
  server().kill();
  std::this_thread::sleep_for(300ms);
  stop = true;
  for (auto& writer : writers) writer.join();
  EXPECT_GT(failures.load(), 0);  // the writes in flight failed, and we are alive
}

}  // namespace
}  // namespace prodsafe::redis
