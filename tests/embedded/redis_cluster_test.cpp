// The embedded Redis Cluster: it comes up with every slot served, a killed
// master's replica takes over, and a manual CLUSTER FAILOVER swaps roles.
#include "prodsafe/embedded/redis_cluster.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
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

redis::Connection connect(const RedisServer& node) {
  return redis::Connection(redis::parse_url(node.url()),
                           redis::Options{.connect_timeout = 1s, .command_timeout = 2s});
}

long long keyslot(redis::Connection& connection, const std::string& key) {
  return connection.command({"CLUSTER", "KEYSLOT", key}).check().integer();
}

// A key that the server says hashes to a slot `owner` serves.
std::string key_served_by(RedisCluster& cluster, RedisServer& owner) {
  redis::Connection connection = connect(owner);
  for (int i = 0; i < 1000; ++i) {
    const std::string key = fmt::format("cluster:key:{}", i);
    if (&cluster.slot_owner(static_cast<int>(keyslot(connection, key))) == &owner) return key;
  }
  ADD_FAILURE() << "no key of 1000 lands on node " << owner.port();
  return {};
}

bool contains(const std::vector<RedisServer*>& nodes, const RedisServer& node) {
  return std::find(nodes.begin(), nodes.end(), &node) != nodes.end();
}

TEST(RedisClusterTest, ComesUpWithEverySlotServedAndAcceptsAWriteOnEachMaster) {
  RedisCluster cluster;
  ASSERT_EQ(cluster.node_count(), 6U);
  const std::vector<RedisServer*> masters = cluster.masters();
  ASSERT_EQ(masters.size(), 3U);
  EXPECT_EQ(cluster.replicas().size(), 3U);
  for (RedisServer* master : masters) EXPECT_EQ(cluster.replicas_of(*master).size(), 1U);

  std::string hosts;
  for (std::size_t i = 0; i < cluster.node_count(); ++i) {
    hosts += fmt::format("{}127.0.0.1:{}", i == 0 ? "" : ",", cluster.node(i).port());
  }
  EXPECT_EQ(cluster.url(), "redis-cluster://" + hosts);

  for (std::size_t i = 0; i < cluster.node_count(); ++i) {
    redis::Connection node = connect(cluster.node(i));
    const redis::Info info = redis::parse_info(node.command({"CLUSTER", "INFO"}).check().str());
    EXPECT_EQ(info.get("cluster_state"), "ok");
    EXPECT_EQ(info.number("cluster_slots_assigned"), 16384);
    EXPECT_EQ(info.number("cluster_slots_ok"), 16384);
    EXPECT_EQ(info.number("cluster_known_nodes"), 6);
  }
  std::set<RedisServer*> owners;
  for (const int slot : {0, 1, 5460, 5461, 10922, 10923, 16383}) {
    RedisServer& owner = cluster.slot_owner(slot);
    EXPECT_TRUE(contains(masters, owner)) << "slot " << slot;
    owners.insert(&owner);
  }
  EXPECT_EQ(owners.size(), 3U) << "the slots are spread over the three masters";

  for (RedisServer* master : masters) {
    const std::string key = key_served_by(cluster, *master);
    redis::Connection connection = connect(*master);
    EXPECT_EQ(connection.command({"SET", key, "v"}).check().str(), "OK") << key;
    EXPECT_EQ(connection.command({"GET", key}).check().str(), "v");
  }
  // A node that does not own the slot redirects: the cluster is real.
  RedisServer* other = masters[0] == &cluster.slot_owner(0) ? masters[1] : masters[0];
  redis::Connection elsewhere = connect(*other);
  redis::Connection owner = connect(cluster.slot_owner(0));
  std::string key_in_slot_0;
  for (int i = 0; key_in_slot_0.empty() && i < 100000; ++i) {
    const std::string key = fmt::format("k{}", i);
    if (keyslot(owner, key) == 0) key_in_slot_0 = key;
  }
  ASSERT_FALSE(key_in_slot_0.empty());
  const redis::Reply moved = elsewhere.command({"GET", key_in_slot_0});
  ASSERT_TRUE(moved.is_error());
  EXPECT_TRUE(moved.error_message().starts_with("MOVED 0 ")) << moved.error_message();
}

TEST(RedisClusterTest, AKilledMasterIsReplacedByItsReplicaAndReturnsAsAReplica) {
  RedisCluster cluster;
  RedisServer& old_master = cluster.slot_owner(0);
  const std::vector<RedisServer*> replicas = cluster.replicas_of(old_master);
  ASSERT_EQ(replicas.size(), 1U);
  const std::string key = key_served_by(cluster, old_master);
  {
    // WAIT counts acknowledgements of its own connection's writes.
    redis::Connection connection = connect(old_master);
    connection.command({"SET", key, "before"}).check();
    ASSERT_EQ(connection.command({"WAIT", "1", "5000"}).check().integer(), 1);
  }

  const RedisCluster::Failover failover = cluster.kill_master(old_master, 20s);
  std::cout << "[ measured ] cluster failover after SIGKILL: " << failover.elapsed.count()
            << " ms (cluster-node-timeout 1000 ms)\n";
  ASSERT_EQ(failover.promoted, replicas[0]);
  EXPECT_FALSE(old_master.running());
  EXPECT_EQ(&cluster.slot_owner(0), failover.promoted);
  EXPECT_EQ(cluster.masters().size(), 3U);

  redis::Connection promoted = connect(*failover.promoted);
  EXPECT_EQ(promoted.command({"GET", key}).check().str(), "before");
  EXPECT_EQ(promoted.command({"SET", key, "after"}).check().str(), "OK");

  old_master.restart();
  cluster.wait_until_replica_of(old_master, *failover.promoted, 20s);
  cluster.wait_until_ok(10s, cluster.node_count());
  EXPECT_TRUE(contains(cluster.replicas_of(*failover.promoted), old_master));
}

TEST(RedisClusterTest, ManualFailoverSwapsMasterAndReplica) {
  RedisCluster cluster;
  RedisServer& old_master = cluster.slot_owner(16383);
  const std::vector<RedisServer*> replicas = cluster.replicas_of(old_master);
  ASSERT_EQ(replicas.size(), 1U);
  RedisServer& replica = *replicas[0];

  const RedisCluster::Failover failover = cluster.manual_failover(replica, 20s);
  std::cout << "[ measured ] manual CLUSTER FAILOVER: " << failover.elapsed.count() << " ms\n";
  EXPECT_EQ(failover.promoted, &replica);
  EXPECT_EQ(&cluster.slot_owner(16383), &replica);
  EXPECT_TRUE(contains(cluster.replicas_of(replica), old_master));
  EXPECT_TRUE(contains(cluster.masters(), replica));
  EXPECT_FALSE(contains(cluster.masters(), old_master));
  EXPECT_THROW((void)cluster.manual_failover(replica, 1s), InvalidArgument)
      << "a master cannot be failed over to";
}

TEST(RedisClusterTest, RefusesOptionsOutOfRangeAndAMissingRedisCli) {
  EXPECT_THROW(RedisCluster({.masters = 2}), InvalidArgument);
  EXPECT_THROW(RedisCluster({.replicas_per_master = 3}), InvalidArgument);
  EXPECT_THROW(RedisCluster({.node_timeout = 10ms}), InvalidArgument);
  EXPECT_THROW(RedisCluster({.cli_executable = "/nonexistent/redis-cli"}), ConfigError);
  RedisCluster cluster({.replicas_per_master = 0});
  EXPECT_THROW((void)cluster.slot_owner(16384), InvalidArgument);
  EXPECT_THROW((void)cluster.kill_master(cluster.node(0), 1s), InvalidArgument)
      << "a master without a replica cannot fail over";
}

TEST(RedisClusterTest, AFailedCreateSaysWhyAndLeavesNoProcessBehind) {
  const std::set<pid_t> before = testing::child_pids();
  try {
    // redis-cli refuses nodes whose cluster support is off.
    RedisCluster cluster({.config = {"cluster-enabled no"}});
    FAIL() << "a cluster of non-cluster nodes was created";
  } catch (const StoreUnavailable& error) {
    EXPECT_NE(std::string(error.what()).find("--cluster create failed"), std::string::npos)
        << error.what();
  }
  EXPECT_EQ(testing::child_pids(), before);
}

TEST(RedisClusterTest, DestructionKillsEveryNodeAndRemovesTheDirectories) {
  std::vector<pid_t> pids;
  std::vector<fs::path> directories;
  {
    RedisCluster cluster({.replicas_per_master = 0});
    for (std::size_t i = 0; i < cluster.node_count(); ++i) {
      pids.push_back(cluster.node(i).pid());
      directories.push_back(cluster.node(i).directory());
    }
    cluster.node(0).pause();
  }
  for (const pid_t pid : pids) EXPECT_TRUE(testing::process_gone(pid)) << pid;
  for (const fs::path& directory : directories) EXPECT_FALSE(fs::exists(directory)) << directory;
}

}  // namespace
}  // namespace prodsafe::embedded
