// The validator on a real Sentinel topology and a real Redis Cluster
// (prodsafe::embedded): every master and replica checked and named, the
// sentinels' and the cluster's own checks, and what each fault changes.
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_cluster.hpp"
#include "prodsafe/embedded/sentinel_topology.hpp"
#include "prodsafe/embedded/test_certificates.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/runtime_checks/redis_runtime_validator.hpp"
#include "support/canned_redis_server.hpp"

namespace prodsafe::runtime_checks {
namespace {

using namespace std::chrono_literals;

// What a production topology would run with (docs/operations.md).
const std::vector<std::string> kSafeConfig = {
    "appendonly yes",          "appendfsync always",
    "maxmemory 64mb",          "maxmemory-policy noeviction",
    "min-replicas-to-write 1", "min-replicas-max-lag 10"};

std::vector<CheckResult> run_checks(const std::string& url, redis::Options options = {}) {
  metrics::Registry registry;
  RedisRuntimeValidator validator(std::make_shared<redis::Client>(url, std::move(options)),
                                  {.latency_samples = 2, .metrics = &registry});
  return validator.run();
}

std::string describe(const std::vector<CheckResult>& results) {
  std::string text;
  for (const CheckResult& result : results) {
    text += std::string(to_string(result.level)) + " " + result.node + " " + result.node_role +
            " " + result.name + ": " + result.observed + "\n";
  }
  return text;
}

const CheckResult* find(const std::vector<CheckResult>& results, const std::string& name,
                        const std::string& node) {
  for (const CheckResult& result : results) {
    if (result.name == name && result.node == node) return &result;
  }
  return nullptr;
}

std::string address(const embedded::RedisServer& server) {
  return "127.0.0.1:" + std::to_string(server.port());
}

std::size_t count(const std::vector<CheckResult>& results, const std::string& name) {
  return static_cast<std::size_t>(
      std::count_if(results.begin(), results.end(),
                    [&](const CheckResult& result) { return result.name == name; }));
}

// RESP2 for an array of bulk strings.
std::string resp_array(const std::vector<std::string>& items) {
  // fmt, not operator+: GCC 12 at -O3 warns (-Wrestrict) on the latter.
  std::string out = fmt::format("*{}\r\n", items.size());
  for (const std::string& item : items) out += fmt::format("${}\r\n{}\r\n", item.size(), item);
  return out;
}

std::string sentinel_master_fields(int master_port) {
  return resp_array({"name", "prodsafe", "ip", "127.0.0.1", "port", std::to_string(master_port),
                     "flags", "master", "quorum", "2", "num-other-sentinels", "2"});
}

// A made-up sentinel for a master named "prodsafe": SENTINEL MASTER names
// 127.0.0.1:master_port, SENTINEL REPLICAS answers `replicas` (raw RESP),
// CKQUORUM says 3 usable sentinels.
testing::CannedRedisServer::Responder made_up_sentinel(int master_port,
                                                       std::string replicas = "*0\r\n") {
  return [master_port, replicas = std::move(replicas)](std::string_view request) -> std::string {
    if (request.find("REPLICAS") != std::string_view::npos) return replicas;
    if (request.find("CKQUORUM") != std::string_view::npos) {
      return "+OK 3 usable Sentinels. Quorum and failover authorization can be reached\r\n";
    }
    if (request.find("MASTER") != std::string_view::npos)
      return sentinel_master_fields(master_port);
    return "-ERR unknown command\r\n";
  };
}

std::string sentinel_url(const std::vector<int>& ports) {
  std::string url = "redis-sentinel://";
  for (std::size_t i = 0; i < ports.size(); ++i)
    url += (i == 0 ? "127.0.0.1:" : ",127.0.0.1:") + std::to_string(ports[i]);
  return url + "?master=prodsafe";
}

const redis::Options kQuick{.connect_timeout = 500ms, .command_timeout = 500ms};

TEST(SentinelValidatorTest, ChecksEverySentinelAndEveryDataNode) {
  embedded::SentinelTopology topology({.config = kSafeConfig});
  const std::vector<CheckResult> results = run_checks(topology.url());
  EXPECT_EQ(worst_level(results), Level::kOk) << describe(results);
  for (const std::string& sentinel : topology.sentinel_endpoints()) {
    ASSERT_NE(find(results, "sentinel", sentinel), nullptr) << sentinel << "\n"
                                                            << describe(results);
    ASSERT_NE(find(results, "sentinel_quorum", sentinel), nullptr);
  }
  const std::string master = address(topology.master());
  ASSERT_NE(find(results, "persistence", master), nullptr) << describe(results);
  EXPECT_EQ(find(results, "persistence", master)->node_role, "master");
  EXPECT_NE(find(results, "min_replicas", master), nullptr);
  for (std::size_t i = 0; i < topology.node_count(); ++i) {
    const std::string node = address(topology.node(i));
    if (node == master) continue;
    const CheckResult* link = find(results, "replication_link", node);
    ASSERT_NE(link, nullptr) << node << "\n" << describe(results);
    EXPECT_EQ(link->node_role, "replica");
    EXPECT_NE(find(results, "memory_headroom", node), nullptr);
  }
}

TEST(SentinelValidatorTest, EachFaultIsReportedOnItsNode) {
  embedded::SentinelTopology topology(
      {.config = {"appendonly yes", "appendfsync always", "maxmemory 64mb",
                  "maxmemory-policy noeviction"}});
  const std::string master = address(topology.master());
  std::vector<embedded::RedisServer*> replicas;
  for (std::size_t i = 0; i < topology.node_count(); ++i) {
    if (address(topology.node(i)) != master) replicas.push_back(&topology.node(i));
  }
  ASSERT_EQ(replicas.size(), 2U);
  embedded::RedisServer& replica = *replicas[0];
  embedded::RedisServer& other = *replicas[1];
  // One replica without persistence, another killed, one sentinel killed.
  redis::Client(topology.node_url(replica)).command({"CONFIG", "SET", "appendonly", "no"});
  other.kill();
  topology.sentinel(2).kill();

  // The sentinels count the killed one usable until it has been silent for
  // down-after-milliseconds (1 s).
  const std::string live_sentinel = topology.sentinel_endpoints()[0];
  std::vector<CheckResult> results;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  do {
    results = run_checks(topology.url());
    const CheckResult* quorum = find(results, "sentinel_quorum", live_sentinel);
    if (quorum != nullptr && quorum->level != Level::kOk) break;
    std::this_thread::sleep_for(200ms);
  } while (std::chrono::steady_clock::now() < deadline);
  const std::string text = describe(results);
  ASSERT_NE(find(results, "persistence", address(replica)), nullptr) << text;
  EXPECT_EQ(find(results, "persistence", address(replica))->level, Level::kCritical) << text;
  EXPECT_EQ(find(results, "persistence", master)->level, Level::kOk) << text;
  ASSERT_NE(find(results, "reachable", address(other)), nullptr) << text;
  EXPECT_EQ(find(results, "reachable", address(other))->level, Level::kError);
  const std::string dead_sentinel = topology.sentinel_endpoints()[2];
  ASSERT_NE(find(results, "sentinel", dead_sentinel), nullptr) << text;
  EXPECT_EQ(find(results, "sentinel", dead_sentinel)->level, Level::kError);
  // Two of three sentinels can still authorize a failover, but one more
  // lost and they cannot.
  ASSERT_NE(find(results, "sentinel_quorum", live_sentinel), nullptr) << text;
  EXPECT_EQ(find(results, "sentinel_quorum", live_sentinel)->level, Level::kWarning) << text;
  // Without min-replicas-to-write, a cut-off master keeps taking writes.
  EXPECT_EQ(find(results, "min_replicas", master)->level, Level::kWarning) << text;
}

TEST(SentinelValidatorTest, NoSentinelReachableThrowsAndAnUnknownNameIsAConfigError) {
  embedded::SentinelTopology topology({.replicas = 1, .sentinels = 1});
  const std::string sentinel = topology.sentinel_endpoints()[0];
  EXPECT_THROW((void)run_checks("redis-sentinel://" + sentinel + "?master=nosuchmaster"),
               ConfigError);
  topology.sentinel(0).kill();
  EXPECT_THROW((void)run_checks(topology.url(), {.connect_timeout = 500ms}), StoreUnavailable);
}

TEST(ClusterValidatorTest, ChecksEveryNodeAndTheSlotMap) {
  embedded::RedisCluster cluster({.config = kSafeConfig});
  std::vector<CheckResult> results = run_checks(cluster.url());
  EXPECT_EQ(worst_level(results), Level::kOk) << describe(results);
  ASSERT_NE(find(results, "slot_coverage", ""), nullptr) << describe(results);
  for (std::size_t i = 0; i < cluster.node_count(); ++i) {
    const std::string node = address(cluster.node(i));
    const CheckResult* state = find(results, "cluster_state", node);
    ASSERT_NE(state, nullptr) << node << "\n" << describe(results);
    EXPECT_EQ(state->level, Level::kOk);
    EXPECT_NE(find(results, "persistence", node), nullptr);
  }
  for (embedded::RedisServer* master : cluster.masters())
    EXPECT_NE(find(results, "replicas", address(*master)), nullptr) << describe(results);

  // A replica lost: its master has none left, and the replica is reported.
  embedded::RedisServer& owner = cluster.slot_owner(0);
  embedded::RedisServer* replica = cluster.replicas_of(owner).at(0);
  const std::string lost = address(*replica);
  replica->kill();
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  do {
    results = run_checks(cluster.url());
    const CheckResult* health = find(results, "cluster_health", lost);
    if (health != nullptr && health->level == Level::kError) break;
    std::this_thread::sleep_for(200ms);
  } while (std::chrono::steady_clock::now() < deadline);
  const std::string text = describe(results);
  ASSERT_NE(find(results, "replicas", address(owner)), nullptr) << text;
  EXPECT_EQ(find(results, "replicas", address(owner))->level, Level::kError) << text;
  ASSERT_NE(find(results, "reachable", lost), nullptr) << text;
  ASSERT_NE(find(results, "cluster_health", lost), nullptr) << text;
  EXPECT_EQ(find(results, "cluster_health", lost)->level, Level::kError) << text;
}

TEST(ClusterValidatorTest, ASlotWithoutAMasterIsCritical) {
  embedded::RedisCluster cluster({.masters = 3, .replicas_per_master = 0});
  // Slot 100 forgotten by every node: no master serves it.
  for (std::size_t i = 0; i < cluster.node_count(); ++i)
    redis::Client(cluster.node(i).url()).command({"CLUSTER", "DELSLOTS", "100"});
  std::vector<CheckResult> results;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  const CheckResult* state = nullptr;
  do {
    results = run_checks(cluster.url());
    state = find(results, "cluster_state", address(cluster.node(0)));
    if (state != nullptr && state->level == Level::kCritical) break;
    std::this_thread::sleep_for(200ms);
  } while (std::chrono::steady_clock::now() < deadline);
  const std::string text = describe(results);
  ASSERT_NE(find(results, "slot_coverage", ""), nullptr) << text;
  EXPECT_EQ(find(results, "slot_coverage", "")->level, Level::kCritical) << text;
  EXPECT_NE(find(results, "slot_coverage", "")->observed.find("first without: 100"),
            std::string::npos);
  ASSERT_NE(state, nullptr) << text;
  EXPECT_EQ(state->level, Level::kCritical) << text;
  // No replicas at all: every master is an ERROR.
  for (embedded::RedisServer* master : cluster.masters())
    EXPECT_EQ(find(results, "replicas", address(*master))->level, Level::kError) << text;
}

TEST(ClusterValidatorTest, ASeedWithAGarbledSlotMapIsPassedOverForTheNext) {
  // A "seed" whose every answer is an array holding one integer: no slot map.
  testing::CannedRedisServer garbled("*1\r\n:7\r\n");
  embedded::RedisCluster cluster({.masters = 3, .replicas_per_master = 0});
  const std::string seeds = "redis-cluster://127.0.0.1:" + std::to_string(garbled.port()) + "," +
                            address(cluster.node(0));
  const redis::Options quick{.connect_timeout = 500ms, .command_timeout = 500ms};
  const std::vector<CheckResult> results = run_checks(seeds, quick);
  EXPECT_GE(garbled.requests(), 1);
  ASSERT_NE(find(results, "slot_coverage", ""), nullptr) << describe(results);
  EXPECT_EQ(find(results, "slot_coverage", "")->level, Level::kOk) << describe(results);
  for (embedded::RedisServer* master : cluster.masters())
    EXPECT_NE(find(results, "persistence", address(*master)), nullptr) << describe(results);

  // With no other seed, the check cannot run, and says why.
  try {
    (void)run_checks("redis-cluster://127.0.0.1:" + std::to_string(garbled.port()), quick);
    FAIL() << "expected StoreUnavailable";
  } catch (const StoreUnavailable& error) {
    EXPECT_NE(std::string(error.what()).find("malformed"), std::string::npos) << error.what();
  }
}

TEST(SentinelValidatorTest, ASentinelListedTwiceInTheUrlIsAskedAndReportedOnce) {
  embedded::RedisServer master;
  testing::CannedRedisServer sentinel(made_up_sentinel(master.port()));
  testing::CannedRedisServer other(made_up_sentinel(master.port()));
  const std::vector<CheckResult> results =
      run_checks(sentinel_url({sentinel.port(), other.port(), sentinel.port()}), kQuick);
  EXPECT_EQ(count(results, "sentinel"), 2U) << describe(results);
  EXPECT_EQ(count(results, "sentinel_quorum"), 2U) << describe(results);
  ASSERT_NE(find(results, "role", address(master)), nullptr) << describe(results);
  EXPECT_EQ(find(results, "role", address(master))->level, Level::kOk);
}

TEST(SentinelValidatorTest, ASentinelWithoutSentinelReplicasIsAskedForSentinelSlaves) {
  embedded::RedisServer master;
  embedded::RedisServer replica;
  const std::string listed =
      "*1\r\n" +
      resp_array({"name", "127.0.0.1:" + std::to_string(replica.port()), "ip", "127.0.0.1", "port",
                  std::to_string(replica.port()), "flags", "slave"});
  // A sentinel before Redis 5.0 knows the command only as SENTINEL SLAVES.
  testing::CannedRedisServer old_sentinel(
      [answer = made_up_sentinel(master.port()), listed](std::string_view request) {
        if (request.find("REPLICAS") != std::string_view::npos) {
          return std::string("-ERR Unknown sentinel subcommand 'replicas'\r\n");
        }
        if (request.find("SLAVES") != std::string_view::npos) return listed;
        return answer(request);
      });
  std::vector<CheckResult> results = run_checks(sentinel_url({old_sentinel.port()}), kQuick);
  ASSERT_NE(find(results, "role", address(replica)), nullptr) << describe(results);
  EXPECT_EQ(find(results, "role", address(replica))->node_role, "replica");
  EXPECT_EQ(find(results, "replicas", "")->level, Level::kOk) << describe(results);

  // One that refuses both (an ACL without them): the replicas are unknown,
  // which is not "no replica".
  testing::CannedRedisServer refusing(
      [answer = made_up_sentinel(master.port())](std::string_view request) {
        if (request.find("REPLICAS") != std::string_view::npos ||
            request.find("SLAVES") != std::string_view::npos) {
          return std::string(
              "-NOPERM User checker has no permissions to run the 'sentinel|replicas' command\r\n");
        }
        return answer(request);
      });
  results = run_checks(sentinel_url({refusing.port()}), kQuick);
  const CheckResult* replicas = find(results, "replicas", "");
  ASSERT_NE(replicas, nullptr) << describe(results);
  EXPECT_EQ(replicas->level, Level::kWarning) << describe(results);
  EXPECT_NE(replicas->observed.find("NOPERM"), std::string::npos) << replicas->observed;
}

TEST(SentinelValidatorTest, TheLevelGaugeOfACheckANodeNoLongerFailsGoesBackToOk) {
  embedded::RedisServer master;
  embedded::RedisServer replica;
  const std::string listed =
      "*1\r\n" +
      resp_array({"name", "127.0.0.1:" + std::to_string(replica.port()), "ip", "127.0.0.1", "port",
                  std::to_string(replica.port()), "flags", "slave"});
  testing::CannedRedisServer sentinel(made_up_sentinel(master.port(), listed));
  metrics::Registry registry;
  RedisRuntimeValidator validator(
      std::make_shared<redis::Client>(sentinel_url({sentinel.port()}), kQuick),
      {.latency_samples = 0, .metrics = &registry});
  const std::string reachable = "prodsafe_runtime_check_level{check=\"reachable\"} ";

  replica.kill();
  std::vector<CheckResult> results = validator.run();
  ASSERT_NE(find(results, "reachable", address(replica)), nullptr) << describe(results);
  EXPECT_NE(registry.serialize().find(reachable + "2\n"), std::string::npos)
      << registry.serialize();

  // Back: this run has no "reachable" result, and the gauge must not keep
  // the last run's ERROR.
  replica.restart();
  results = validator.run();
  EXPECT_EQ(find(results, "reachable", address(replica)), nullptr) << describe(results);
  EXPECT_NE(registry.serialize().find(reachable + "0\n"), std::string::npos)
      << registry.serialize();
}

TEST(SentinelValidatorTest, GarbageAndSilenceFromSentinelsAndNodesAreResultsWithinTheTimeouts) {
  embedded::RedisServer master;
  // A "replica" that accepts connections and never answers.
  testing::CannedRedisServer silent_replica("");
  const std::string listed = "*2\r\n" +
                             resp_array({"ip", "127.0.0.1", "port",
                                         std::to_string(silent_replica.port()), "flags", "slave"}) +
                             ":7\r\n";  // and an entry that is not a list of fields
  testing::CannedRedisServer sane(made_up_sentinel(master.port(), listed));
  const auto master_answer = [&](std::string reply) {
    return [answer = made_up_sentinel(master.port()),
            reply = std::move(reply)](std::string_view request) {
      return request.find("MASTER") != std::string_view::npos &&
                     request.find("REPLICAS") == std::string_view::npos &&
                     request.find("CKQUORUM") == std::string_view::npos
                 ? reply
                 : answer(request);
    };
  };
  testing::CannedRedisServer not_an_array(master_answer("+OK\r\n"));
  testing::CannedRedisServer odd_length(master_answer(
      resp_array({"ip", "127.0.0.1", "port", std::to_string(master.port()), "flags"})));
  testing::CannedRedisServer port_abc(
      master_answer(resp_array({"ip", "127.0.0.1", "port", "abc", "flags", "master"})));
  testing::CannedRedisServer port_zero(
      master_answer(resp_array({"ip", "127.0.0.1", "port", "0", "flags", "master"})));
  testing::CannedRedisServer silent_sentinel("");

  const auto start = std::chrono::steady_clock::now();
  const std::vector<CheckResult> results =
      run_checks(sentinel_url({not_an_array.port(), sane.port(), odd_length.port(), port_abc.port(),
                               port_zero.port(), silent_sentinel.port()}),
                 kQuick);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  const std::string text = describe(results);
  for (const testing::CannedRedisServer* garbled :
       {&not_an_array, &odd_length, &port_abc, &port_zero, &silent_sentinel}) {
    const CheckResult* sentinel =
        find(results, "sentinel", "127.0.0.1:" + std::to_string(garbled->port()));
    ASSERT_NE(sentinel, nullptr) << text;
    EXPECT_EQ(sentinel->level, Level::kError) << text;
    // Naming no readable master is not naming another one.
    EXPECT_EQ(sentinel->message.find("another master"), std::string::npos) << sentinel->message;
  }
  EXPECT_EQ(find(results, "sentinel", "127.0.0.1:" + std::to_string(sane.port()))->level,
            Level::kOk)
      << text;
  ASSERT_NE(find(results, "role", address(master)), nullptr) << text;
  const CheckResult* hung =
      find(results, "reachable", "127.0.0.1:" + std::to_string(silent_replica.port()));
  ASSERT_NE(hung, nullptr) << text;
  EXPECT_EQ(hung->level, Level::kError);
}

TEST(SentinelValidatorTest, AMasterAtAnIpv6AddressIsCheckedAndNamedInBrackets) {
  embedded::RedisServer master({.config = {"bind 127.0.0.1 ::1"}});
  testing::CannedRedisServer sentinel([&](std::string_view request) {
    if (request.find("REPLICAS") != std::string_view::npos) return std::string("*0\r\n");
    if (request.find("CKQUORUM") != std::string_view::npos) return std::string("+OK 3 usable\r\n");
    return resp_array({"ip", "::1", "port", std::to_string(master.port()), "flags", "master"});
  });
  const std::vector<CheckResult> results = run_checks(sentinel_url({sentinel.port()}), kQuick);
  const std::string node = "[::1]:" + std::to_string(master.port());
  ASSERT_NE(find(results, "role", node), nullptr) << describe(results);
  EXPECT_EQ(find(results, "role", node)->level, Level::kOk) << describe(results);
  EXPECT_EQ(find(results, "reachable", node), nullptr) << describe(results);
}

TEST(SentinelValidatorTest, RedissSentinelSpeaksTlsToTheSentinelsAndToTheNodes) {
  std::string directory =
      (std::filesystem::temp_directory_path() / "prodsafe-check-tls-XXXXXX").string();
  ASSERT_NE(::mkdtemp(directory.data()), nullptr);
  const embedded::TestCertificates certs =
      embedded::make_test_certificates(std::filesystem::path(directory) / "certificates");
  {
    const embedded::RedisServerTls tls_only{
        .cert_file = certs.server_cert, .key_file = certs.server_key, .ca_file = certs.ca_cert};
    embedded::RedisServer master({.tls = tls_only});
    // A TLS-only sentinel does not log that it is ready: it gets a plain
    // port too, for embedded::RedisServer to see it up.
    embedded::RedisServerTls both = tls_only;
    both.tls_only = false;
    embedded::RedisServer sentinel(
        {.config = {"sentinel monitor prodsafe 127.0.0.1 " + std::to_string(master.port()) + " 1",
                    "tls-replication yes"},
         .tls = both,
         .sentinel = true});
    const std::string sentinel_tls = "127.0.0.1:" + std::to_string(sentinel.tls_port());
    const std::vector<CheckResult> results =
        run_checks("rediss-sentinel://" + sentinel_tls + "?master=prodsafe",
                   {.tls = {.ca_file = certs.ca_cert.string()}});
    const std::string text = describe(results);
    const CheckResult* asked = find(results, "sentinel", sentinel_tls);
    ASSERT_NE(asked, nullptr) << text;
    EXPECT_EQ(asked->level, Level::kOk) << text;
    EXPECT_EQ(count(results, "reachable"), 0U) << text;
    ASSERT_NE(find(results, "role", address(master)), nullptr) << text;
    EXPECT_EQ(find(results, "role", address(master))->level, Level::kOk) << text;
  }
  std::filesystem::remove_all(directory);
}

TEST(ClusterValidatorTest, TlsAskedForInTheOptionsReachesTheNodesOnTheirTlsPorts) {
  std::string directory =
      (std::filesystem::temp_directory_path() / "prodsafe-check-tls-XXXXXX").string();
  ASSERT_NE(::mkdtemp(directory.data()), nullptr);
  const embedded::TestCertificates certs =
      embedded::make_test_certificates(std::filesystem::path(directory) / "certificates");
  {
    // One node serving every slot on a plain port and a TLS port; with
    // tls-cluster, CLUSTER SHARDS lists both.
    embedded::RedisServer node({.config = {"tls-cluster yes", "tls-replication yes"},
                                .tls = embedded::RedisServerTls{.cert_file = certs.server_cert,
                                                                .key_file = certs.server_key,
                                                                .ca_file = certs.ca_cert,
                                                                .tls_only = false},
                                .cluster = true});
    redis::Client plain(node.url());
    plain.command({"CLUSTER", "ADDSLOTSRANGE", "0", "16383"});
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (plain.command({"CLUSTER", "INFO"}).str().find("cluster_state:ok") == std::string::npos) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the one-node cluster is not ok";
      std::this_thread::sleep_for(20ms);
    }
    // redis-cluster:// with TLS from the options (the CLI's --tls), not rediss-cluster://.
    const std::string tls_node = "127.0.0.1:" + std::to_string(node.tls_port());
    const std::vector<CheckResult> results =
        run_checks("redis-cluster://" + tls_node,
                   {.tls = {.enabled = true, .ca_file = certs.ca_cert.string()}});
    EXPECT_EQ(count(results, "reachable"), 0U) << describe(results);
    ASSERT_NE(find(results, "cluster_state", tls_node), nullptr) << describe(results);
    EXPECT_EQ(find(results, "cluster_state", tls_node)->level, Level::kOk);
  }
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace prodsafe::runtime_checks
