// Writing to a Redis that has just died must not raise SIGPIPE: this binary
// leaves SIGPIPE at its default action (which kills the process), as a user's
// program may.
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/embedded/test_certificates.hpp"
#include "prodsafe/redis/client.hpp"
#include "support/redis_fixture.hpp"

namespace prodsafe::redis {
namespace {

using namespace std::chrono_literals;
using SigpipeTest = prodsafe::testing::RedisTest;

// Writers push values larger than the socket buffers through `client` while
// `server` is killed; the writes in flight fail, and the process lives.
void kill_during_large_writes(Client& client, embedded::RedisServer& server) {
  struct sigaction current {};
  ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &current), 0);
  ASSERT_EQ(current.sa_handler, SIG_DFL) << "this test needs SIGPIPE at its default action";

  const std::string value(8 << 20, 'v');
  std::atomic<int> failures{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int i = 0; i < 4; ++i) {
    writers.emplace_back([&, i] {
      while (!stop) {
        try {
          client.set("big:" + std::to_string(i), value);
        } catch (const Error&) {
          ++failures;
          return;
        }
      }
    });
  }
  std::this_thread::sleep_for(300ms);
  server.kill();
  std::this_thread::sleep_for(300ms);
  stop = true;
  for (auto& writer : writers) writer.join();
  EXPECT_GT(failures.load(), 0);
}

TEST_F(SigpipeTest, KillingRedisDuringLargeWritesDoesNotKillTheProcess) {
  auto client = make_client({.command_timeout = 2s, .pool_size = 4});
  kill_during_large_writes(*client, server());
}

TEST(SigpipeTlsTest, KillingATlsRedisDuringLargeWritesDoesNotKillTheProcess) {
  namespace fs = std::filesystem;
  std::string pattern = (fs::temp_directory_path() / "prodsafe-sigpipe-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const fs::path directory = pattern;
  const auto certs = embedded::make_test_certificates(directory);
  {
    embedded::RedisServer server({.tls = embedded::RedisServerTls{.cert_file = certs.server_cert,
                                                                  .key_file = certs.server_key}});
    Client client(
        server.url(),
        {.command_timeout = 2s, .pool_size = 4, .tls = {.ca_file = certs.ca_cert.string()}});
    kill_during_large_writes(client, server);
  }
  fs::remove_all(directory);
}

}  // namespace
}  // namespace prodsafe::redis
