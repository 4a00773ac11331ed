// The topology checks' verdicts from made-up answers: sentinels that
// disagree, cannot reach a quorum or know no such master; a cluster slot map
// with holes, a master without a replica, a failed node; and each node
// check a topology adds (role against the topology's, min-replicas-to-write,
// the replication link, cluster_state).
#include "topology.hpp"

#include <gtest/gtest.h>

#include "checks.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/slot.hpp"

namespace prodsafe::runtime_checks {
namespace {

using redis::HostPort;
using redis::detail::ClusterNode;
using redis::detail::ClusterTopology;
using redis::detail::NodeHealth;
using redis::detail::NodeRole;

SentinelView answered(int port, std::string master_port = "6379", std::string flags = "master",
                      std::string quorum =
                          "OK 3 usable Sentinels. Quorum and failover "
                          "authorization can be reached") {
  SentinelView view;
  view.sentinel = {"127.0.0.1", port};
  view.outcome = SentinelView::Outcome::kAnswered;
  view.master = {{"ip", "127.0.0.1"},
                 {"port", std::move(master_port)},
                 {"flags", std::move(flags)},
                 {"quorum", "2"},
                 {"num-other-sentinels", "2"}};
  view.replicas = {{{"ip", "127.0.0.1"}, {"port", "6380"}, {"flags", "slave"}},
                   {{"ip", "127.0.0.1"}, {"port", "6381"}, {"flags", "slave"}}};
  view.quorum_ok = quorum.starts_with("OK");
  view.quorum_reply = std::move(quorum);
  return view;
}

SentinelView silent(int port, SentinelView::Outcome outcome, std::string problem) {
  SentinelView view;
  view.sentinel = {"127.0.0.1", port};
  view.outcome = outcome;
  view.problem = std::move(problem);
  return view;
}

// The one result named `name` about `node` ("" for the topology's own).
const CheckResult& find(const std::vector<CheckResult>& results, const std::string& name,
                        const std::string& node) {
  for (const CheckResult& result : results) {
    if (result.name == name && result.node == node) return result;
  }
  static const CheckResult missing{.name = "missing"};
  ADD_FAILURE() << "no result " << name << " for '" << node << "'";
  return missing;
}

TEST(SentinelFindingsTest, AHealthyTopologyIsOkAndNamesItsNodes) {
  const TopologyFindings findings =
      evaluate_sentinels({answered(26379), answered(26380), answered(26381)}, "prodsafe");
  for (const CheckResult& result : findings.results)
    EXPECT_EQ(result.level, Level::kOk)
        << result.name << " " << result.node << ": " << result.observed;
  EXPECT_EQ(find(findings.results, "sentinel", "127.0.0.1:26380").node_role, "sentinel");
  EXPECT_EQ(find(findings.results, "replicas", "").observed,
            "2 of 2 replicas in reach (as 127.0.0.1:26379 sees them)");
  ASSERT_EQ(findings.nodes.size(), 3U);
  EXPECT_EQ(findings.nodes[0].address, (HostPort{"127.0.0.1", 6379}));
  EXPECT_EQ(findings.nodes[0].role, "master");
  EXPECT_EQ(findings.nodes[1].role, "replica");
  EXPECT_EQ(findings.nodes[2].address, (HostPort{"127.0.0.1", 6381}));
}

TEST(SentinelFindingsTest, EachFaultOfOneSentinelIsItsOwnResult) {
  const TopologyFindings findings = evaluate_sentinels(
      {silent(26379, SentinelView::Outcome::kUnreachable, "connection refused"),
       answered(26380, "6390"),  // names another master than the majority
       answered(26381), answered(26382), answered(26383, "6379", "master,s_down"),
       silent(26384, SentinelView::Outcome::kUnknownMaster, "knows no master named 'prodsafe'")},
      "prodsafe");
  EXPECT_EQ(find(findings.results, "sentinel", "127.0.0.1:26379").level, Level::kError);
  const CheckResult& other = find(findings.results, "sentinel", "127.0.0.1:26380");
  EXPECT_EQ(other.level, Level::kError);
  EXPECT_NE(other.message.find("127.0.0.1:6379"), std::string::npos) << other.message;
  EXPECT_EQ(find(findings.results, "sentinel", "127.0.0.1:26381").level, Level::kOk);
  // s_down is this sentinel's own view (perhaps only it is cut off from the
  // master): an ERROR; o_down, agreed by a quorum, is CRITICAL (below).
  EXPECT_EQ(find(findings.results, "sentinel", "127.0.0.1:26383").level, Level::kError);
  const CheckResult& unknown = find(findings.results, "sentinel", "127.0.0.1:26384");
  EXPECT_EQ(unknown.level, Level::kError);
  EXPECT_NE(unknown.remediation.find("sentinel monitor prodsafe"), std::string::npos);
  // The master checked is the one most sentinels name.
  ASSERT_FALSE(findings.nodes.empty());
  EXPECT_EQ(findings.nodes[0].address, (HostPort{"127.0.0.1", 6379}));
}

TEST(SentinelFindingsTest, AMasterDownByQuorumIsCritical) {
  const TopologyFindings findings = evaluate_sentinels(
      {answered(26379, "6379", "master,s_down,o_down"), answered(26380)}, "prodsafe");
  EXPECT_EQ(find(findings.results, "sentinel", "127.0.0.1:26379").level, Level::kCritical);
  EXPECT_EQ(find(findings.results, "sentinel", "127.0.0.1:26380").level, Level::kOk);
}

TEST(SentinelFindingsTest, QuorumLevels) {
  const TopologyFindings findings = evaluate_sentinels(
      {answered(26379),
       answered(26380, "6379", "master",
                "OK 2 usable Sentinels. Quorum and failover "
                "authorization can be reached"),
       answered(26381, "6379", "master",
                "NOQUORUM 1 usable Sentinels. Not enough available Sentinels to reach the "
                "specified quorum for this master")},
      "prodsafe");
  EXPECT_EQ(find(findings.results, "sentinel_quorum", "127.0.0.1:26379").level, Level::kOk);
  EXPECT_EQ(find(findings.results, "sentinel_quorum", "127.0.0.1:26380").level, Level::kWarning);
  const CheckResult& none = find(findings.results, "sentinel_quorum", "127.0.0.1:26381");
  EXPECT_EQ(none.level, Level::kError);
  EXPECT_NE(none.observed.find("NOQUORUM"), std::string::npos) << none.observed;
}

TEST(SentinelFindingsTest, NoReplicaInReachIsAnErrorButDownReplicasAreStillChecked) {
  SentinelView view = answered(26379);
  view.replicas[0]["flags"] = "slave,s_down,disconnected";
  view.replicas[1]["flags"] = "slave,s_down";
  const TopologyFindings findings = evaluate_sentinels({view}, "prodsafe");
  EXPECT_EQ(find(findings.results, "replicas", "").level, Level::kError);
  EXPECT_EQ(findings.nodes.size(), 3U);  // reported as unreachable by their own checks
}

TEST(SentinelFindingsTest, ANodeListedTwiceIsCheckedOnce) {
  SentinelView view = answered(26379);
  // 6380 twice, and the master itself among its replicas.
  view.replicas.push_back({{"ip", "127.0.0.1"}, {"port", "6380"}, {"flags", "slave"}});
  view.replicas.push_back({{"ip", "127.0.0.1"}, {"port", "6379"}, {"flags", "slave"}});
  const TopologyFindings findings = evaluate_sentinels({view}, "prodsafe");
  ASSERT_EQ(findings.nodes.size(), 3U);
  EXPECT_EQ(findings.nodes[0].address, (HostPort{"127.0.0.1", 6379}));
  EXPECT_EQ(findings.nodes[0].role, "master");
  EXPECT_EQ(findings.nodes[1].address, (HostPort{"127.0.0.1", 6380}));
  EXPECT_EQ(findings.nodes[2].address, (HostPort{"127.0.0.1", 6381}));
  EXPECT_EQ(find(findings.results, "replicas", "").observed,
            "2 of 2 replicas in reach (as 127.0.0.1:26379 sees them)");
}

TEST(SentinelFindingsTest, ReplicasComeFromASentinelThatListedThem) {
  SentinelView refused = answered(26379);
  refused.replicas.clear();
  refused.replicas_problem = "SENTINEL REPLICAS: NOPERM no permissions";
  // Another sentinel naming the same master lists them.
  const TopologyFindings listed = evaluate_sentinels({refused, answered(26380)}, "prodsafe");
  EXPECT_EQ(listed.nodes.size(), 3U);
  EXPECT_EQ(find(listed.results, "replicas", "").level, Level::kOk);
  EXPECT_EQ(find(listed.results, "replicas", "").observed,
            "2 of 2 replicas in reach (as 127.0.0.1:26380 sees them)");
  // None does: unknown, not none.
  const TopologyFindings unknown = evaluate_sentinels({refused}, "prodsafe");
  EXPECT_EQ(unknown.nodes.size(), 1U);
  const CheckResult& replicas = find(unknown.results, "replicas", "");
  EXPECT_EQ(replicas.level, Level::kWarning);
  EXPECT_NE(replicas.observed.find("NOPERM"), std::string::npos) << replicas.observed;
}

TEST(SentinelFindingsTest, NoSentinelReachedOrNoneKnowsTheNameThrowsSayingWhich) {
  EXPECT_THROW(
      (void)evaluate_sentinels({silent(26379, SentinelView::Outcome::kUnreachable, "refused"),
                                silent(26380, SentinelView::Outcome::kUnreachable, "timed out")},
                               "prodsafe"),
      StoreUnavailable);
  EXPECT_THROW(
      (void)evaluate_sentinels({silent(26379, SentinelView::Outcome::kRefused, "WRONGPASS"),
                                silent(26380, SentinelView::Outcome::kUnreachable, "timed out")},
                               "prodsafe"),
      StoreUnavailable);
  try {
    (void)evaluate_sentinels(
        {silent(26379, SentinelView::Outcome::kUnknownMaster, "knows no master named 'x'"),
         silent(26380, SentinelView::Outcome::kUnreachable, "refused")},
        "x");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("?master="), std::string::npos) << error.what();
  }
}

ClusterNode node(int port, NodeRole role, int master = -1,
                 NodeHealth health = NodeHealth::kOnline) {
  ClusterNode result;
  result.host = "127.0.0.1";
  result.port = port;
  result.role = role;
  result.master = master;
  result.health = health;
  return result;
}

// Three masters (7000-7002), each with the slots of a third, and `replicas`.
ClusterTopology cluster(std::vector<ClusterNode> replicas) {
  ClusterTopology topology;
  for (int i = 0; i < 3; ++i) topology.nodes.push_back(node(7000 + i, NodeRole::kMaster));
  for (ClusterNode& replica : replicas) topology.nodes.push_back(std::move(replica));
  topology.slot_master.resize(redis::kClusterSlots);
  for (int slot = 0; slot < redis::kClusterSlots; ++slot)
    topology.slot_master[slot] = static_cast<std::uint16_t>(slot * 3 / redis::kClusterSlots);
  return topology;
}

// What seed `host`:7000 answered. (Built member by member: GCC 12 at -O3
// warns that a brace-initialized ClusterView's seed may be used
// uninitialized.)
ClusterView view_of(std::string host, ClusterTopology topology) {
  ClusterView view;
  view.seed.host = std::move(host);
  view.seed.port = 7000;
  view.topology = std::move(topology);
  return view;
}

TEST(ClusterFindingsTest, AHealthyClusterIsOkAndListsMastersThenReplicas) {
  const ClusterView view = view_of(
      "127.0.0.1", cluster({node(7003, NodeRole::kReplica, 0), node(7004, NodeRole::kReplica, 1),
                            node(7005, NodeRole::kReplica, 2)}));
  const TopologyFindings findings = evaluate_cluster(view, false);
  for (const CheckResult& result : findings.results)
    EXPECT_EQ(result.level, Level::kOk) << result.name << " " << result.node;
  EXPECT_EQ(find(findings.results, "slot_coverage", "").observed,
            "16384 of 16384 slots have a master");
  EXPECT_EQ(find(findings.results, "replicas", "127.0.0.1:7001").node_role, "master");
  ASSERT_EQ(findings.nodes.size(), 6U);
  EXPECT_EQ(findings.nodes[2].role, "master");
  EXPECT_EQ(findings.nodes[3].role, "replica");
  EXPECT_EQ(findings.nodes[5].address.port, 7005);
}

TEST(ClusterFindingsTest, HolesInTheSlotMapAMasterWithoutReplicaAndAFailedNode) {
  ClusterView view =
      view_of("127.0.0.1", cluster({node(7003, NodeRole::kReplica, 0),
                                    node(7004, NodeRole::kReplica, 1, NodeHealth::kFailed),
                                    node(7005, NodeRole::kReplica, 2, NodeHealth::kLoading)}));
  view.topology.slot_master[100] = redis::detail::kUnassignedSlot;
  const TopologyFindings findings = evaluate_cluster(view, false);
  const CheckResult& coverage = find(findings.results, "slot_coverage", "");
  EXPECT_EQ(coverage.level, Level::kCritical);
  EXPECT_NE(coverage.observed.find("16383 of 16384"), std::string::npos) << coverage.observed;
  EXPECT_NE(coverage.observed.find("first without: 100"), std::string::npos);
  EXPECT_EQ(find(findings.results, "replicas", "127.0.0.1:7000").level, Level::kOk);
  EXPECT_EQ(find(findings.results, "replicas", "127.0.0.1:7001").level, Level::kError);
  EXPECT_EQ(find(findings.results, "cluster_health", "127.0.0.1:7004").level, Level::kError);
  // "loading" is what Redis 7.0 says of every replica of a cluster that has
  // had no writes yet: the replica counts, and its own checks tell its sync.
  EXPECT_EQ(find(findings.results, "replicas", "127.0.0.1:7002").level, Level::kOk);
  for (const CheckResult& result : findings.results) EXPECT_NE(result.node, "127.0.0.1:7005");
  EXPECT_EQ(findings.nodes.size(), 6U);  // the failed one too: its own checks say more
}

TEST(ClusterFindingsTest, TheAddressFollowsTheTransportAndAnEmptyHostIsTheSeeds) {
  ClusterView view = view_of("10.0.0.9", cluster({}));
  view.topology.nodes[0].host.clear();
  view.topology.nodes[0].tls_port = 8000;
  view.topology.nodes[1].tls_port = 8001;
  view.topology.nodes[2].port = 0;  // TLS only
  view.topology.nodes[2].tls_port = 8002;
  const TopologyFindings tls = evaluate_cluster(view, true);
  ASSERT_EQ(tls.nodes.size(), 3U);
  EXPECT_EQ(tls.nodes[0].address, (HostPort{"10.0.0.9", 8000}));
  EXPECT_EQ(tls.nodes[2].address.port, 8002);
  const TopologyFindings plain = evaluate_cluster(view, false);
  ASSERT_EQ(plain.nodes.size(), 2U);
  const CheckResult& unreachable = find(plain.results, "reachable", "127.0.0.1:0");
  EXPECT_EQ(unreachable.level, Level::kError);
  EXPECT_NE(unreachable.remediation.find("rediss-cluster://"), std::string::npos);
}

TEST(ClusterFindingsTest, AnAddressListedTwiceIsCheckedOnceAsItsLiveNode) {
  // A node that came back with a new id (its nodes.conf lost) leaves its old
  // id behind, failed, at the same address: here a failed "master" at 7003,
  // where the live node is a replica, and a failed replica at 7004, where
  // the live one is a replica too.
  ClusterView view = view_of(
      "127.0.0.1", cluster({node(7003, NodeRole::kReplica, 0), node(7004, NodeRole::kReplica, 1),
                            node(7005, NodeRole::kReplica, 2),
                            node(7003, NodeRole::kMaster, -1, NodeHealth::kFailed),
                            node(7004, NodeRole::kReplica, 1, NodeHealth::kFailed)}));
  view.topology.nodes[6].id = "0123456789abcdef0123456789abcdef01234567";
  const TopologyFindings findings = evaluate_cluster(view, false);
  ASSERT_EQ(findings.nodes.size(), 6U);
  for (const TopologyNode& checked : findings.nodes) {
    if (checked.address.port >= 7003) {
      EXPECT_EQ(checked.role, "replica") << checked.address.str();
    }
  }
  // The failed entries are still reported, named by their id.
  const CheckResult& ghost = find(findings.results, "cluster_health", "127.0.0.1:7003");
  EXPECT_EQ(ghost.level, Level::kError);
  EXPECT_NE(ghost.observed.find("0123456789abcdef"), std::string::npos) << ghost.observed;
  EXPECT_EQ(find(findings.results, "replicas", "127.0.0.1:7001").level, Level::kOk);
}

TEST(ClusterFindingsTest, AMasterWithoutSlotsNeedsNoReplica) {
  // A master just added (or emptied by a rebalance) serves no key.
  ClusterView view = view_of(
      "127.0.0.1", cluster({node(7003, NodeRole::kReplica, 0), node(7004, NodeRole::kReplica, 1),
                            node(7005, NodeRole::kReplica, 2), node(7006, NodeRole::kMaster)}));
  const TopologyFindings findings = evaluate_cluster(view, false);
  const CheckResult& empty = find(findings.results, "replicas", "127.0.0.1:7006");
  EXPECT_EQ(empty.level, Level::kOk) << empty.observed;
  EXPECT_NE(empty.observed.find("no slots"), std::string::npos) << empty.observed;
  EXPECT_EQ(findings.nodes.size(), 7U);  // still checked like any node
}

ServerFacts facts(std::map<std::string, std::string, std::less<>> info,
                  std::optional<std::map<std::string, std::string>> config = std::nullopt) {
  ServerFacts result;
  result.info = redis::Info(std::move(info));
  result.config = std::move(config);
  return result;
}

TEST(NodeChecksTest, RoleAgainstWhatTheTopologySays) {
  const ServerFacts master = facts({{"role", "master"}});
  const ServerFacts replica =
      facts({{"role", "slave"}, {"master_host", "10.0.0.1"}, {"master_port", "6379"}});
  EXPECT_EQ(check_topology_role(master, "master").level, Level::kOk);
  EXPECT_EQ(check_topology_role(replica, "replica").level, Level::kOk);
  EXPECT_EQ(check_topology_role(replica, "replica").observed, "role=replica of 10.0.0.1:6379");
  EXPECT_EQ(check_topology_role(replica, "master").level, Level::kCritical);
  EXPECT_EQ(check_topology_role(master, "replica").level, Level::kError);
  EXPECT_EQ(check_topology_role(facts({}), "master").level, Level::kWarning);
}

TEST(NodeChecksTest, MinReplicasToWrite) {
  using Config = std::map<std::string, std::string>;
  const CheckResult off =
      check_min_replicas(facts({{"role", "master"}}, Config{{"min-replicas-to-write", "0"},
                                                            {"min-replicas-max-lag", "10"}}));
  EXPECT_EQ(off.level, Level::kWarning);
  EXPECT_NE(off.remediation.find("CONFIG SET min-replicas-to-write 1"), std::string::npos);
  const CheckResult met = check_min_replicas(
      facts({{"min_slaves_good_slaves", "2"}},
            Config{{"min-replicas-to-write", "1"}, {"min-replicas-max-lag", "10"}}));
  EXPECT_EQ(met.level, Level::kOk);
  EXPECT_EQ(met.observed, "min-replicas-to-write=1 min-replicas-max-lag=10: 2 good replicas");
  EXPECT_EQ(check_min_replicas(
                facts({{"min_slaves_good_slaves", "1"}},
                      Config{{"min-replicas-to-write", "2"}, {"min-replicas-max-lag", "10"}}))
                .level,
            Level::kCritical);
  // Without CONFIG: INFO alone says whether it is on.
  const CheckResult unconfigured = check_min_replicas(facts({{"role", "master"}}));
  EXPECT_EQ(unconfigured.level, Level::kWarning);
  EXPECT_NE(unconfigured.remediation.find("redis.conf"), std::string::npos);
  EXPECT_EQ(check_min_replicas(facts({{"min_slaves_good_slaves", "1"}})).level, Level::kOk);
  EXPECT_EQ(check_min_replicas(facts({{"min_slaves_good_slaves", "0"}})).level, Level::kCritical);
}

TEST(NodeChecksTest, ReplicationLink) {
  EXPECT_EQ(check_replication_link(facts({{"master_link_status", "up"}})).level, Level::kOk);
  EXPECT_EQ(check_replication_link(facts({{"master_link_status", "down"}})).level, Level::kError);
  EXPECT_EQ(check_replication_link(
                facts({{"master_link_status", "down"}, {"master_sync_in_progress", "1"}}))
                .level,
            Level::kWarning);
  EXPECT_EQ(check_replication_link(facts({})).level, Level::kError);
}

TEST(NodeChecksTest, ClusterStateAndWhatEvaluateNodeAdds) {
  ServerFacts node = facts({{"role", "master"}, {"aof_enabled", "1"}, {"loading", "0"}});
  node.cluster_info = redis::parse_info("cluster_state:fail\r\ncluster_slots_ok:16000\r\n");
  EXPECT_EQ(check_cluster_state(node).level, Level::kCritical);
  node.cluster_info = redis::parse_info("cluster_state:ok\r\n");
  EXPECT_EQ(check_cluster_state(node).level, Level::kOk);

  const std::vector<CheckResult> as_master = evaluate_node(node, {}, "master");
  EXPECT_EQ(find(as_master, "role", "").level, Level::kOk);
  EXPECT_EQ(find(as_master, "min_replicas", "").level, Level::kWarning);
  EXPECT_EQ(find(as_master, "cluster_state", "").level, Level::kOk);
  const std::vector<CheckResult> as_replica = evaluate_node(node, {}, "replica");
  EXPECT_EQ(find(as_replica, "role", "").level, Level::kError);
  EXPECT_EQ(find(as_replica, "replication_link", "").level, Level::kError);
  for (const CheckResult& result : as_replica) EXPECT_NE(result.name, "min_replicas");
}

TEST(GroupByNodeTest, EachNodesResultsComeTogetherAfterTheTopologysOwn) {
  const auto result = [](std::string name, std::string node) {
    return CheckResult{.name = std::move(name), .node = std::move(node)};
  };
  const std::vector<CheckResult> grouped =
      group_by_node({result("sentinel", "s1"), result("replicas", "m1"), result("replicas", "m2"),
                     result("slot_coverage", ""), result("role", "m1"), result("role", "m2"),
                     result("persistence", "m1"), result("other", "")});
  std::vector<std::string> order;
  for (const CheckResult& checked : grouped) order.push_back(checked.name + "@" + checked.node);
  EXPECT_EQ(order,
            (std::vector<std::string>{"slot_coverage@", "other@", "sentinel@s1", "replicas@m1",
                                      "role@m1", "persistence@m1", "replicas@m2", "role@m2"}));
}

}  // namespace
}  // namespace prodsafe::runtime_checks
