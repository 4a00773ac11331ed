// The connection pool against real failures: exhaustion, broken and killed
// connections, a crashed and restarted server, a paused server, backoff.
#include "prodsafe/redis/pool.hpp"

#include <future>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "support/redis_fixture.hpp"

namespace prodsafe::redis {
namespace {

using namespace std::chrono_literals;
using std::chrono::steady_clock;
using PoolTest = prodsafe::testing::RedisTest;

TEST(PoolOptionsTest, ZeroPoolSizeIsRefused) {
  EXPECT_THROW(ConnectionPool(Endpoint{}, Options{.pool_size = 0}), InvalidArgument);
}

TEST_F(PoolTest, ExhaustedPoolTimesOutThenRecovers) {
  ConnectionPool pool(parse_url(server().url()), {.pool_size = 2, .pool_checkout_timeout = 100ms});
  std::optional<ConnectionPool::Lease> first(pool.checkout());
  auto second = pool.checkout();
  const auto start = steady_clock::now();
  try {
    (void)pool.checkout();
    FAIL() << "no exception";
  } catch (const Timeout& error) {
    const auto waited = steady_clock::now() - start;
    EXPECT_GE(waited, 100ms);
    EXPECT_LT(waited, 600ms);
    EXPECT_NE(std::string(error.what()).find("pool_checkout_timeout"), std::string::npos);
  }
  EXPECT_EQ(pool.stats().checkout_timeouts, 1u);
  first.reset();  // gives a connection back
  EXPECT_EQ(pool.checkout()->command({"PING"}).str(), "PONG");
  EXPECT_EQ(pool.stats().created, 2u);
}

TEST_F(PoolTest, WaitingCheckoutGetsAReturnedConnection) {
  ConnectionPool pool(parse_url(server().url()), {.pool_size = 1, .pool_checkout_timeout = 2s});
  std::optional<ConnectionPool::Lease> held(pool.checkout());
  auto waiter =
      std::async(std::launch::async, [&] { return pool.checkout()->command({"PING"}).str(); });
  std::this_thread::sleep_for(50ms);
  held.reset();
  EXPECT_EQ(waiter.get(), "PONG");
  EXPECT_EQ(pool.stats().created, 1u);
}

TEST_F(PoolTest, ConnectionClosedByServerIsDroppedAndReplaced) {
  auto client = make_client();
  EXPECT_EQ(client->ping(), "PONG");
  // Another connection kills every normal client but itself.
  make_client()->command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
  std::this_thread::sleep_for(20ms);  // let the FIN arrive
  EXPECT_EQ(client->ping(), "PONG");
  const PoolStats stats = client->pool().stats();
  EXPECT_EQ(stats.dropped, 1u);
  EXPECT_EQ(stats.created, 2u);
}

TEST_F(PoolTest, ConnectionBrokenWhileLeasedIsNotReused) {
  auto client = make_client();
  {
    auto lease = client->pool().checkout();
    const std::string id = std::to_string(lease->command({"CLIENT", "ID"}).integer());
    make_client()->command({"CLIENT", "KILL", "ID", id});
    EXPECT_THROW(lease->command({"PING"}), StoreUnavailable);
    EXPECT_TRUE(lease->broken());
    EXPECT_THROW(lease->command({"PING"}), StoreUnavailable);
  }
  EXPECT_EQ(client->pool().stats().dropped, 1u);
  EXPECT_EQ(client->ping(), "PONG");
}

TEST_F(PoolTest, ReconnectsAfterKillAndRestart) {
  auto client = make_client();
  client->set("k", "v");
  server().kill();
  EXPECT_THROW(client->ping(), StoreUnavailable);
  EXPECT_THROW(client->ping(), StoreUnavailable);
  server().restart();
  EXPECT_EQ(client->ping(), "PONG");
  const PoolStats stats = client->pool().stats();
  EXPECT_GE(stats.connect_failures, 1u);
  EXPECT_GE(stats.created, 2u);
}

TEST_F(PoolTest, PausedServerTimesOutWithinTheCommandTimeoutAndNoThreadIsStuck) {
  Options options = short_timeouts();
  options.command_timeout = 200ms;
  options.pool_size = 4;
  auto client = make_client(options);
  // Open all four connections before the pause.
  {
    std::vector<ConnectionPool::Lease> leases;
    for (int i = 0; i < 4; ++i) leases.push_back(client->pool().checkout());
    for (auto& lease : leases) lease->command({"PING"});
  }
  server().pause();
  std::vector<std::future<std::chrono::milliseconds>> calls;
  for (int i = 0; i < 4; ++i) {
    calls.push_back(std::async(std::launch::async, [&] {
      const auto start = steady_clock::now();
      try {
        client->ping();
        ADD_FAILURE() << "PING answered by a paused server";
      } catch (const Timeout& error) {
        EXPECT_NE(std::string(error.what()).find("timed out after 200 ms"), std::string::npos);
      }
      return std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - start);
    }));
  }
  for (auto& call : calls) {
    ASSERT_EQ(call.wait_for(3s), std::future_status::ready) << "a thread is stuck";
    const auto took = call.get();
    EXPECT_GE(took, 190ms);
    EXPECT_LT(took, 700ms);  // the timeout plus a small margin
  }
  server().resume();
  EXPECT_EQ(client->ping(), "PONG");
}

TEST_F(PoolTest, NewConnectionToPausedServerTimesOut) {
  server().pause();
  Options options = short_timeouts();
  options.connect_timeout = 200ms;
  auto client = make_client(options);
  const auto start = steady_clock::now();
  EXPECT_THROW(client->ping(), Timeout);
  EXPECT_LT(steady_clock::now() - start, 1500ms);
  server().resume();
}

TEST(PoolBackoffTest, FailedConnectsBackOffAndFailFast) {
  // A port nobody listens on: bind to 0, then close.
  int port = 0;
  {
    embedded::RedisServer probe;
    port = probe.port();
  }
  ConnectionPool pool(parse_url("redis://127.0.0.1:" + std::to_string(port)),
                      {.pool_checkout_timeout = 20ms,
                       .reconnect_backoff_initial = 300ms,
                       .reconnect_backoff_max = 600ms});
  try {
    (void)pool.checkout();
    FAIL() << "connected to a closed port";
  } catch (const StoreUnavailable& error) {
    EXPECT_NE(std::string(error.what()).find("Connection refused"), std::string::npos)
        << error.what();
  }
  // Inside the backoff window: no new attempt, an immediate error that says when.
  const auto start = steady_clock::now();
  try {
    (void)pool.checkout();
    FAIL() << "no exception";
  } catch (const StoreUnavailable& error) {
    EXPECT_NE(std::string(error.what()).find("next reconnect attempt in"), std::string::npos)
        << error.what();
  }
  EXPECT_LT(steady_clock::now() - start, 100ms);
  EXPECT_EQ(pool.stats().connect_failures, 1u);
  std::this_thread::sleep_for(350ms);
  EXPECT_THROW((void)pool.checkout(), StoreUnavailable);
  EXPECT_EQ(pool.stats().connect_failures, 2u);
  EXPECT_EQ(pool.stats().open, 0u);
}

}  // namespace
}  // namespace prodsafe::redis
