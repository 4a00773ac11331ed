// The client layer under faults that hand a caller a reply that is not its
// own: a fork that shares pooled sockets, an exception in the middle of a
// reply, a failover behind an address that does not change. Against real
// redis-servers.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/redis/client.hpp"
#include "support/allocation_failure.hpp"
#include "support/redis_fixture.hpp"

namespace prodsafe::redis {
namespace {

using namespace std::chrono_literals;
using FaultTest = prodsafe::testing::RedisTest;

// Parent and child both use the pool after a fork: each must read only its
// own replies, so each reads back exactly the values it wrote.
TEST_F(FaultTest, AForkedChildNeverSharesThePoolsConnections) {
  auto client = make_client({.command_timeout = 2s, .pool_size = 1});
  ASSERT_EQ(client->ping(), "PONG");  // the pool now holds a connection
  constexpr int kRounds = 2000;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  const char* who = child == 0 ? "child" : "parent";
  int wrong = 0;
  int failed = 0;
  for (int i = 0; i < kRounds; ++i) {
    const std::string value = fmt::format("{}-{}", who, i);
    try {
      client->set(client->key(who), value);
      if (client->get(client->key(who)) != value) ++wrong;
    } catch (const Error&) {
      ++failed;
    }
  }
  if (child == 0) ::_exit(wrong == 0 && failed == 0 ? 0 : 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(wrong, 0) << "the parent read values that were not its own";
  EXPECT_EQ(failed, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child read values that were not its own, or failed";
}

// A connection opened before fork() is the parent's: the child gets an error
// from it instead of the parent's replies, and never writes to it.
TEST_F(FaultTest, AConnectionRefusesToServeTheChildOfAFork) {
  Connection connection(parse_url(server().url()), short_timeouts());
  ASSERT_EQ(connection.command({"PING"}).str(), "PONG");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 3;
    try {
      (void)connection.command({"SET", "from-child", "1"});
      code = 1;  // it served the child
    } catch (const StoreUnavailable& error) {
      code = std::string(error.what()).find("fork") != std::string::npos ? 0 : 2;
    } catch (...) {
      code = 4;
    }
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: served the child, 2: the error does not say fork";
  EXPECT_EQ(connection.command({"EXISTS", "from-child"}).integer(), 0);
  EXPECT_EQ(connection.command({"PING"}).str(), "PONG");
}

// A reply that cannot be converted (memory runs out for a large bulk string)
// leaves the replies after it unread: the connection must not go back to the
// pool, or the next caller would read them.
TEST_F(FaultTest, AnExceptionMidPipelineNeverHandsTheNextCallerItsReplies) {
  auto client = make_client({.command_timeout = 2s, .pool_size = 1});
  const std::string big(1'000'000, 'x');
  client->set("big", big);
  client->set("small", "small-value");
  client->set("other", "other-value");
  Pipeline pipeline;
  pipeline.add({"GET", "big"}).add({"GET", "small"});
  {
    prodsafe::testing::FailAllocations fail({.size = big.size() + 1});
    EXPECT_THROW((void)client->pipeline(pipeline), std::bad_alloc);
    ASSERT_EQ(fail.failed(), 1U) << "the bulk string's allocation is no longer that size";
  }
  EXPECT_EQ(client->get("other"), "other-value");
  EXPECT_EQ(client->get("small"), "small-value");
}

TEST_F(FaultTest, AnExceptionMidCommandNeverHandsTheNextCallerItsReply) {
  auto client = make_client({.command_timeout = 2s, .pool_size = 1});
  const std::string big(1'000'000, 'y');
  client->set("big", big);
  client->set("other", "other-value");
  {
    prodsafe::testing::FailAllocations fail({.size = big.size() + 1});
    EXPECT_THROW((void)client->command({"MGET", "big", "other"}), std::bad_alloc);
    ASSERT_EQ(fail.failed(), 1U);
  }
  EXPECT_EQ(client->get("other"), "other-value");
  EXPECT_EQ(client->command({"MGET", "other", "big"}).array().at(0).str(), "other-value");
}

// Two servers behind one stable address (a unix socket path that is moved
// from one to the other, as a DNS name or a VIP moves): after a failover the
// pooled connections still reach the old primary, now a replica. A READONLY
// reply must drop them, so that the next call reaches the new primary.
TEST(ReadonlyTest, AReadonlyReplyDropsPooledConnectionsSoTheRetryReachesTheNewPrimary) {
  embedded::RedisServer old_primary({.unix_socket = true});
  embedded::RedisServer new_primary({.unix_socket = true});
  const std::filesystem::path stable = old_primary.directory() / "stable.sock";
  std::filesystem::create_symlink(old_primary.socket_path(), stable);
  Client client("unix://" + stable.string(), {.command_timeout = 2s, .pool_size = 2});
  {
    // Two pooled connections to the old primary.
    auto first = client.pool().checkout();
    auto second = client.pool().checkout();
    ASSERT_EQ(first->command({"PING"}).str(), "PONG");
    ASSERT_EQ(second->command({"PING"}).str(), "PONG");
  }
  client.set("k", "before");

  // The failover: the old primary follows the new one, the address moves.
  Client(old_primary.url()).command({"REPLICAOF", "127.0.0.1", std::to_string(new_primary.port())});
  const std::filesystem::path moving = old_primary.directory() / "moving.sock";
  std::filesystem::create_symlink(new_primary.socket_path(), moving);
  std::filesystem::rename(moving, stable);

  try {
    client.set("k", "after");
  } catch (const ReplyError& error) {
    EXPECT_EQ(error.prefix(), "READONLY");
    EXPECT_TRUE(error.retryable());
    client.set("k", "after");  // the retry
  }
  EXPECT_EQ(Client(new_primary.url()).get("k"), "after");
  EXPECT_EQ(client.get("k"), "after");
}

// A connection leased while another one got READONLY reaches the old
// primary too: it is dropped when it comes back, not pooled.
TEST(ReadonlyTest, AConnectionLeasedDuringTheFailoverIsNotPooledAfterIt) {
  embedded::RedisServer old_primary({.unix_socket = true});
  embedded::RedisServer new_primary({.unix_socket = true});
  const std::filesystem::path stable = old_primary.directory() / "stable.sock";
  std::filesystem::create_symlink(old_primary.socket_path(), stable);
  Client client("unix://" + stable.string(), {.command_timeout = 2s, .pool_size = 2});
  std::optional<ConnectionPool::Lease> held(client.pool().checkout());
  std::optional<ConnectionPool::Lease> other(client.pool().checkout());
  ASSERT_EQ((*held)->command({"PING"}).str(), "PONG");
  ASSERT_EQ((*other)->command({"PING"}).str(), "PONG");

  Client(old_primary.url()).command({"REPLICAOF", "127.0.0.1", std::to_string(new_primary.port())});
  const std::filesystem::path moving = old_primary.directory() / "moving.sock";
  std::filesystem::create_symlink(new_primary.socket_path(), moving);
  std::filesystem::rename(moving, stable);

  // One leased connection learns of the failover; the other, held meanwhile,
  // never sent a write and comes back looking healthy.
  EXPECT_TRUE((*other)->command({"SET", "k", "v"}).is_error());
  other.reset();
  held.reset();
  client.set("k", "after");  // must not meet READONLY again
  EXPECT_EQ(Client(new_primary.url()).get("k"), "after");
}

TEST_F(FaultTest, SubscribingToNoChannelIsRefusedBeforeAnythingIsSent) {
  Connection connection(parse_url(server().url()), short_timeouts());
  EXPECT_THROW(connection.subscribe({}), InvalidArgument);
  EXPECT_EQ(connection.command({"ECHO", "mine"}).str(), "mine");
}

// "Wait as long as it takes" spelled as the largest duration waits, rather
// than overflowing into a deadline in the past.
TEST_F(FaultTest, NextMessageWithTheLargestTimeoutWaitsForTheMessage) {
  Connection subscriber(parse_url(server().url()), short_timeouts());
  const std::string_view channel = "c";
  subscriber.subscribe({&channel, 1});
  std::thread publisher([url = server().url()] {
    std::this_thread::sleep_for(200ms);
    Client(url).command({"PUBLISH", "c", "late"});
  });
  const auto message = subscriber.next_message(std::chrono::milliseconds::max());
  publisher.join();
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->array().at(2).str(), "late");
}

}  // namespace
}  // namespace prodsafe::redis
