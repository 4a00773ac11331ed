// `prodsafe check` on a Sentinel topology and on a Redis Cluster, run as a
// user would: every node reported under its own heading (JSON: `node` and
// `node_role` on every result), the sentinels' credentials from the
// environment, and the exit code from the worst node.
#include <set>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "prodsafe/embedded/redis_cluster.hpp"
#include "prodsafe/embedded/sentinel_topology.hpp"
#include "support/cli_run.hpp"

namespace {

using prodsafe::testing::CliRun;
using prodsafe::testing::run_cli;

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t found = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size()))
    ++found;
  return found;
}

TEST(TopologyCheckCliTest, SentinelTopologyIsReportedNodeByNode) {
  prodsafe::embedded::SentinelTopology topology(
      {.replicas = 1, .password = "datapw", .sentinel_password = "sentinelpw"});
  // fmt, not operator+: GCC 12 at -O3 warns (-Wrestrict) on the latter.
  const std::string url = fmt::format("'{}'", topology.url());

  // Without the sentinels' password they refuse: exit 2, saying where it goes.
  const CliRun refused = run_cli("check " + url + " --latency-samples 0");
  EXPECT_EQ(refused.exit_code, 2) << refused.out;
  EXPECT_TRUE(contains(refused.out, "PRODSAFE_SENTINEL_PASSWORD")) << refused.out;
  EXPECT_FALSE(contains(refused.out, "datapw")) << refused.out;

  const std::string environment = "PRODSAFE_SENTINEL_PASSWORD=sentinelpw";
  const CliRun json = run_cli("check " + url + " --json --latency-samples 0", environment);
  // The embedded nodes have no persistence: CRITICAL on each data node.
  EXPECT_EQ(json.exit_code, 1) << json.out;
  const auto report = nlohmann::json::parse(json.out);
  EXPECT_FALSE(contains(json.out, "datapw"));
  std::set<std::string> roles;
  std::set<std::string> nodes;
  for (const auto& result : report["results"]) {
    roles.insert(result["node_role"].get<std::string>());
    nodes.insert(result["node"].get<std::string>());
    if (result["name"] == "persistence") {
      EXPECT_EQ(result["level"], "CRITICAL");
    }
  }
  EXPECT_EQ(roles, (std::set<std::string>{"", "master", "replica", "sentinel"}));
  // Three sentinels, a master and a replica, and the topology's own checks.
  EXPECT_EQ(nodes.size(), 6U) << json.out;
  EXPECT_TRUE(nodes.contains("127.0.0.1:" + std::to_string(topology.master_port())));

  const CliRun text = run_cli("check " + url + " --latency-samples 0", environment);
  EXPECT_EQ(text.exit_code, 1) << text.out;
  // Each heading once, the topology's own checks first.
  for (const std::string& sentinel : topology.sentinel_endpoints())
    EXPECT_EQ(count(text.out, "\n  " + sentinel + " (sentinel)\n"), 1U) << text.out;
  EXPECT_EQ(count(text.out, "\n  topology\n"), 1U) << text.out;
  EXPECT_LT(text.out.find("\n  topology\n"),
            text.out.find("\n  " + topology.sentinel_endpoints()[0] + " (sentinel)\n"))
      << text.out;
  EXPECT_TRUE(
      contains(text.out, "127.0.0.1:" + std::to_string(topology.master_port()) + " (master)\n"))
      << text.out;
  EXPECT_EQ(
      run_cli("check " + url + " --latency-samples 0 --fail-at critical", environment).exit_code,
      1);

  // A master name no sentinel knows: a configuration error, exit 78.
  const CliRun unknown =
      run_cli("check 'redis-sentinel://" + topology.sentinel_endpoints()[0] + "?master=nosuch'",
              environment);
  EXPECT_EQ(unknown.exit_code, 78) << unknown.out;
  EXPECT_TRUE(contains(unknown.out, "nosuch")) << unknown.out;

  // Wrong passwords, for the sentinels and for the nodes: refused, and
  // neither password in any output.
  const CliRun wrong_sentinels =
      run_cli("check " + url + " --json", "PRODSAFE_SENTINEL_PASSWORD=wrongsentinelpw");
  EXPECT_EQ(wrong_sentinels.exit_code, 2) << wrong_sentinels.out;
  EXPECT_FALSE(contains(wrong_sentinels.out, "wrongsentinelpw")) << wrong_sentinels.out;
  std::string wrong_nodes_url = url;
  wrong_nodes_url.replace(wrong_nodes_url.find(":datapw@"), 8, ":wrongdatapw@");
  for (const std::string& format : {std::string(" --json"), std::string()}) {
    const CliRun wrong_nodes =
        run_cli("check " + wrong_nodes_url + " --latency-samples 0" + format, environment);
    EXPECT_EQ(wrong_nodes.exit_code, 1) << wrong_nodes.out;
    EXPECT_TRUE(contains(wrong_nodes.out, "reachable")) << wrong_nodes.out;
    EXPECT_FALSE(contains(wrong_nodes.out, "datapw")) << wrong_nodes.out;
    EXPECT_FALSE(contains(wrong_nodes.out, "sentinelpw")) << wrong_nodes.out;
  }
  for (const CliRun* run : {&refused, &json, &text, &unknown})
    EXPECT_FALSE(contains(run->out, "sentinelpw")) << run->out;
}

TEST(TopologyCheckCliTest, ClusterIsReportedNodeByNode) {
  prodsafe::embedded::RedisCluster cluster(
      {.appendonly = true,
       .config = {"appendfsync always", "maxmemory 64mb", "maxmemory-policy noeviction",
                  "min-replicas-to-write 1", "min-replicas-max-lag 10"}});
  const CliRun run = run_cli("check " + cluster.url() + " --json --latency-samples 0");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  const auto report = nlohmann::json::parse(run.out);
  EXPECT_EQ(report["passed"], true);
  std::set<std::string> nodes;
  bool coverage = false;
  for (const auto& result : report["results"]) {
    if (!result["node"].get<std::string>().empty()) nodes.insert(result["node"].get<std::string>());
    coverage = coverage || result["name"] == "slot_coverage";
  }
  EXPECT_TRUE(coverage);
  EXPECT_EQ(nodes.size(), cluster.node_count()) << run.out;

  // The table gives each node one heading, under which all its results are.
  const CliRun text = run_cli("check " + cluster.url() + " --latency-samples 0");
  EXPECT_EQ(text.exit_code, 0) << text.out;
  EXPECT_EQ(count(text.out, "\n  topology\n"), 1U) << text.out;
  for (std::size_t i = 0; i < cluster.node_count(); ++i) {
    const std::string heading = "\n  127.0.0.1:" + std::to_string(cluster.node(i).port()) + " (";
    EXPECT_EQ(count(text.out, heading), 1U) << heading << "\n" << text.out;
  }

  // A master that loses its only replica: ERROR, so the default gate fails.
  prodsafe::embedded::RedisServer& owner = cluster.slot_owner(0);
  cluster.replicas_of(owner).at(0)->kill();
  const CliRun lost = run_cli("check " + cluster.url() + " --latency-samples 0");
  EXPECT_EQ(lost.exit_code, 1) << lost.out;
  EXPECT_TRUE(contains(lost.out, "reachable")) << lost.out;
}

}  // namespace
