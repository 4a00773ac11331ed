// The embedded Sentinel topology: it comes up settled, and Sentinel really
// fails over when its master is killed or paused.
#include "prodsafe/embedded/sentinel_topology.hpp"

#include <chrono>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "embedded/topology_support.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/connection.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/info.hpp"

namespace prodsafe::embedded {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

redis::Connection connect(const std::string& url) {
  return redis::Connection(redis::parse_url(url),
                           redis::Options{.connect_timeout = 1s, .command_timeout = 2s});
}

redis::Info replication(SentinelTopology& topology, const RedisServer& node) {
  redis::Connection connection = connect(topology.node_url(node));
  return redis::parse_info(connection.command({"INFO", "replication"}).check().str());
}

long long ms(Clock::duration duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

TEST(SentinelTopologyTest, ComesUpWithReplicasInSyncAndSentinelsThatSeeEachOther) {
  SentinelTopology topology;
  ASSERT_EQ(topology.node_count(), 3U);
  ASSERT_EQ(topology.sentinel_count(), 3U);
  EXPECT_EQ(topology.master_port(), topology.node(0).port());
  EXPECT_EQ(&topology.master(), &topology.node(0));

  std::string hosts;
  for (std::size_t i = 0; i < topology.sentinel_count(); ++i) {
    const std::string endpoint = fmt::format("127.0.0.1:{}", topology.sentinel(i).port());
    EXPECT_EQ(topology.sentinel_endpoints().at(i), endpoint);
    hosts += (i == 0 ? "" : ",") + endpoint;
  }
  EXPECT_EQ(topology.url(), "redis-sentinel://" + hosts + "/0?master=prodsafe");

  for (std::size_t i = 0; i < topology.sentinel_count(); ++i) {
    redis::Connection sentinel =
        connect(fmt::format("redis://127.0.0.1:{}", topology.sentinel(i).port()));
    const redis::Reply master =
        sentinel.command({"SENTINEL", "get-master-addr-by-name", "prodsafe"}).check();
    EXPECT_EQ(master.array().at(1).str(), std::to_string(topology.node(0).port()));
    EXPECT_EQ(sentinel.command({"SENTINEL", "sentinels", "prodsafe"}).check().array().size(), 2U);
    EXPECT_EQ(sentinel.command({"SENTINEL", "replicas", "prodsafe"}).check().array().size(), 2U);
  }
  for (std::size_t i = 1; i < topology.node_count(); ++i) {
    const redis::Info info = replication(topology, topology.node(i));
    EXPECT_EQ(info.get("role"), "slave");
    EXPECT_EQ(info.get("master_link_status"), "up");
  }

  redis::Connection master = connect(topology.node_url(topology.master()));
  master.command({"SET", "topology:key", "v"}).check();
  EXPECT_EQ(master.command({"WAIT", "2", "5000"}).check().integer(), 2);
}

TEST(SentinelTopologyTest, SigkillOfTheMasterFailsOverAndTheOldMasterReturnsAsAReplica) {
  SentinelTopology topology;
  RedisServer& old_master = topology.master();
  {
    // WAIT counts acknowledgements of its own connection's writes.
    redis::Connection connection = connect(topology.node_url(old_master));
    connection.command({"SET", "before", "1"}).check();
    ASSERT_EQ(connection.command({"WAIT", "2", "5000"}).check().integer(), 2);
  }

  const auto killed = Clock::now();
  old_master.kill();
  RedisServer& promoted = topology.wait_for_failover(old_master, 15s);
  const auto failed_over = Clock::now();
  std::cout << "[ measured ] Sentinel failover after SIGKILL: " << ms(failed_over - killed)
            << " ms (down-after 1000 ms)\n";
  EXPECT_NE(&promoted, &old_master);
  EXPECT_EQ(topology.master_port(), promoted.port());

  redis::Connection writer = connect(topology.node_url(promoted));
  EXPECT_EQ(writer.command({"GET", "before"}).check().str(), "1") << "the write before the kill";
  EXPECT_EQ(writer.command({"SET", "after", "2"}).check().str(), "OK");

  old_master.restart();
  topology.wait_until_replica_of(old_master, promoted, 20s);
  std::cout << "[ measured ] old master back as a replica " << ms(Clock::now() - failed_over)
            << " ms after the failover\n";
  const redis::Info info = replication(topology, old_master);
  EXPECT_EQ(info.get("role"), "slave");
  EXPECT_EQ(info.get("master_port"), std::to_string(promoted.port()));
  EXPECT_EQ(writer.command({"WAIT", "2", "5000"}).check().integer(), 2);
  EXPECT_EQ(connect(topology.node_url(old_master)).command({"GET", "after"}).check().str(), "2");
}

TEST(SentinelTopologyTest, SigstopOfTheMasterFailsOverAndTheResumedMasterIsDemoted) {
  SentinelTopology topology({.replicas = 1});
  RedisServer& old_master = topology.master();

  const auto paused = Clock::now();
  old_master.pause();
  RedisServer& promoted = topology.wait_for_failover(old_master, 15s);
  const auto failover_time = Clock::now() - paused;
  std::cout << "[ measured ] Sentinel failover after SIGSTOP: " << ms(failover_time) << " ms\n";
  EXPECT_GE(failover_time, topology.options().down_after) << "not before down-after";
  EXPECT_EQ(&promoted, &topology.node(1));

  old_master.resume();
  topology.wait_until_replica_of(old_master, promoted, 20s);
  EXPECT_EQ(replication(topology, old_master).get("role"), "slave");
  EXPECT_EQ(replication(topology, promoted).get("role"), "master");
  topology.wait_until_settled(10s);
}

TEST(SentinelTopologyTest, PasswordsGuardDataNodesAndSentinelsSeparately) {
  SentinelTopology topology({.master_name = "orders",
                             .replicas = 1,
                             .password = "data p@ss",
                             .sentinel_password = "sentinel:secret",
                             .config = {"appendonly yes"}});
  const RedisServer& sentinel = topology.sentinel(0);
  EXPECT_EQ(topology.url(), fmt::format("redis-sentinel://:data%20p%40ss@{}/0?master=orders",
                                        fmt::join(topology.sentinel_endpoints(), ",")));
  EXPECT_EQ(topology.node_url(topology.node(0)),
            fmt::format("redis://:data%20p%40ss@127.0.0.1:{}", topology.node(0).port()));

  redis::Connection anonymous_sentinel =
      connect(fmt::format("redis://127.0.0.1:{}", sentinel.port()));
  const redis::Reply refused =
      anonymous_sentinel.command({"SENTINEL", "get-master-addr-by-name", "orders"});
  ASSERT_TRUE(refused.is_error());
  EXPECT_TRUE(refused.error_message().starts_with("NOAUTH")) << refused.error_message();
  EXPECT_THROW(connect(fmt::format("redis://:data%20p%40ss@127.0.0.1:{}", sentinel.port())),
               ReplyError)
      << "the data nodes' password must not open a sentinel";
  EXPECT_EQ(topology.master_port(), topology.node(0).port());

  redis::Connection anonymous_node =
      connect(fmt::format("redis://127.0.0.1:{}", topology.node(0).port()));
  EXPECT_TRUE(anonymous_node.command({"GET", "k"}).is_error());
  for (std::size_t i = 0; i < topology.node_count(); ++i) {
    redis::Connection node = connect(topology.node_url(topology.node(i)));
    EXPECT_EQ(node.command({"CONFIG", "GET", "appendonly"}).check().array().at(1).str(), "yes");
  }
}

TEST(SentinelTopologyTest, ARestartedSentinelKeepsTheConfigItRewrote) {
  SentinelTopology topology({.replicas = 1, .sentinels = 1});
  RedisServer& sentinel = topology.sentinel(0);
  const auto myid = [&] {
    redis::Connection connection = connect(fmt::format("redis://127.0.0.1:{}", sentinel.port()));
    return connection.command({"SENTINEL", "myid"}).check().str();
  };
  const std::string before = myid();
  sentinel.restart();
  EXPECT_EQ(myid(), before) << "a fresh redis.conf would have given the sentinel a new id";
  EXPECT_EQ(topology.master_port(), topology.node(0).port());
}

TEST(SentinelTopologyTest, RefusesOptionsOutOfRange) {
  EXPECT_THROW(SentinelTopology({.replicas = 0}), InvalidArgument);
  EXPECT_THROW(SentinelTopology({.replicas = 3}), InvalidArgument);
  EXPECT_THROW(SentinelTopology({.sentinels = 0}), InvalidArgument);
  EXPECT_THROW(SentinelTopology({.sentinels = 3, .quorum = 4}), InvalidArgument);
  EXPECT_THROW(SentinelTopology({.master_name = "has space"}), InvalidArgument);
  EXPECT_THROW(SentinelTopology({.down_after = 10ms}), InvalidArgument);
}

TEST(SentinelTopologyTest, DestructionKillsEveryProcessAndRemovesTheDirectories) {
  std::vector<pid_t> pids;
  std::vector<fs::path> directories;
  {
    SentinelTopology topology({.replicas = 1});
    for (std::size_t i = 0; i < topology.node_count(); ++i) {
      pids.push_back(topology.node(i).pid());
      directories.push_back(topology.node(i).directory());
    }
    for (std::size_t i = 0; i < topology.sentinel_count(); ++i) {
      pids.push_back(topology.sentinel(i).pid());
      directories.push_back(topology.sentinel(i).directory());
    }
    topology.node(1).pause();  // a paused node must not hold teardown up
  }
  for (const pid_t pid : pids) EXPECT_TRUE(testing::process_gone(pid)) << pid;
  for (const fs::path& directory : directories) EXPECT_FALSE(fs::exists(directory)) << directory;
}

TEST(SentinelTopologyTest, AConstructorThatGivesUpHalfWayLeavesNoProcessBehind) {
  const std::set<pid_t> before = testing::child_pids();
  try {
    // The replicas sync, but announce an address the sentinels cannot reach
    // (TEST-NET-1), so the sentinels, started too, never see them healthy.
    SentinelTopology topology(
        {.replicas = 1, .config = {"replica-announce-ip 192.0.2.1"}, .startup_timeout = 3s});
    FAIL() << "the topology settled with unreachable replicas";
  } catch (const Timeout& timeout) {
    EXPECT_NE(std::string(timeout.what()).find("did not settle"), std::string::npos)
        << timeout.what();
    EXPECT_NE(std::string(timeout.what()).find("lists replica"), std::string::npos)
        << timeout.what();
  }
  EXPECT_EQ(testing::child_pids(), before);
}

TEST(SentinelTopologyTest, AConstructorThatTimesOutBeforeTheSentinelsStartStopsTheDataNodes) {
  const std::set<pid_t> before = testing::child_pids();
  EXPECT_THROW(SentinelTopology({.replicas = 1, .startup_timeout = 1ms}), Timeout);
  EXPECT_EQ(testing::child_pids(), before);
}

}  // namespace
}  // namespace prodsafe::embedded
