// parse_cluster_shards(), parse_cluster_slots() and parse_redirect() on real
// replies: a cluster of three masters and one replica, made by hand from four
// private cluster-enabled redis-servers (CLUSTER ADDSLOTSRANGE, MEET,
// REPLICATE), read from every node.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cluster_topology.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/slot.hpp"
#include "redis/cluster_node.hpp"

namespace prodsafe::redis::detail {
namespace {

using namespace std::chrono_literals;
using prodsafe::testing::cluster_test_options;
using prodsafe::testing::ClusterNodeProcess;
using prodsafe::testing::start_cluster_node;

// The slots given to the three masters.
struct Range {
  int start;
  int end;
};
constexpr Range kRanges[] = {{0, 5460}, {5461, 10922}, {10923, 16383}};

class ClusterTopologyIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (int i = 0; i < 4; ++i) {
      nodes_.push_back(start_cluster_node());
      clients_.push_back(
          std::make_unique<Client>(nodes_.back().server->url(), cluster_test_options()));
      ids_.push_back(clients_.back()->command({"CLUSTER", "MYID"}).str());
    }
    for (int i = 0; i < 3; ++i) {
      clients_[i]
          ->command({"CLUSTER", "ADDSLOTSRANGE", std::to_string(kRanges[i].start),
                     std::to_string(kRanges[i].end)})
          .check();
    }
    for (int i = 1; i < 4; ++i) {
      clients_[0]
          ->command({"CLUSTER", "MEET", "127.0.0.1", std::to_string(nodes_[i].server->port()),
                     std::to_string(nodes_[i].bus_port)})
          .check();
    }
    // The replica can follow master 0 once it knows it.
    wait_until("node 3 knows node 0", [] {
      return clients_[3]->command({"CLUSTER", "NODES"}).str().find(ids_[0]) != std::string::npos;
    });
    clients_[3]->command({"CLUSTER", "REPLICATE", ids_[0]}).check();
    wait_until("every node sees the whole cluster, the replica in sync", [] {
      for (std::size_t i = 0; i < 4; ++i) {
        if (!agrees(i)) return false;
      }
      return true;
    });
  }

  static void TearDownTestSuite() {
    clients_.clear();
    nodes_.clear();
    ids_.clear();
  }

  template <typename Condition>
  static void wait_until(const std::string& what, Condition condition) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!condition()) {
      if (std::chrono::steady_clock::now() > deadline) {
        std::string views;
        for (std::size_t i = 0; i < clients_.size(); ++i) {
          views += "node " + std::to_string(i) + ":\n" +
                   clients_[i]->command({"CLUSTER", "NODES"}).str() + "\n";
        }
        throw Timeout("gave up waiting until " + what + "; the nodes' views:\n" + views);
      }
      std::this_thread::sleep_for(50ms);  // polling a condition, with a deadline
    }
  }

  // True when node `i`'s replies parse to the cluster built above: the three
  // ranges on their masters, and the replica, online, under master 0 (CLUSTER
  // SLOTS lists a replica only once it has synced).
  static bool agrees(std::size_t i) {
    const ClusterTopology shards =
        parse_cluster_shards(clients_[i]->command({"CLUSTER", "SHARDS"}));
    const ClusterTopology slots = parse_cluster_slots(clients_[i]->command({"CLUSTER", "SLOTS"}));
    for (const ClusterTopology* topology : {&shards, &slots}) {
      if (topology->nodes.size() != 4 || topology->assigned_slots() != kClusterSlots) return false;
      const ClusterNode* replica = find(*topology, ids_[3]);
      if (replica == nullptr || replica->role != NodeRole::kReplica ||
          replica->health != NodeHealth::kOnline || replica->master < 0 ||
          topology->nodes[static_cast<std::size_t>(replica->master)].id != ids_[0]) {
        return false;
      }
    }
    return true;
  }

  static const ClusterNode* find(const ClusterTopology& topology, const std::string& id) {
    for (const ClusterNode& node : topology.nodes) {
      if (node.id == id) return &node;
    }
    return nullptr;
  }

  static std::vector<ClusterNodeProcess> nodes_;
  static std::vector<std::unique_ptr<Client>> clients_;
  static std::vector<std::string> ids_;
};

std::vector<ClusterNodeProcess> ClusterTopologyIntegrationTest::nodes_;
std::vector<std::unique_ptr<Client>> ClusterTopologyIntegrationTest::clients_;
std::vector<std::string> ClusterTopologyIntegrationTest::ids_;

TEST_F(ClusterTopologyIntegrationTest, ShardsAndSlotsAgreeOnEveryNodeWithTheClusterBuilt) {
  for (std::size_t n = 0; n < 4; ++n) {
    SCOPED_TRACE("replies of node " + std::to_string(n));
    const ClusterTopology shards =
        parse_cluster_shards(clients_[n]->command({"CLUSTER", "SHARDS"}));
    const ClusterTopology slots = parse_cluster_slots(clients_[n]->command({"CLUSTER", "SLOTS"}));
    for (std::size_t m = 0; m < 3; ++m) {
      for (int slot = kRanges[m].start; slot <= kRanges[m].end; ++slot) {
        const ClusterNode* from_shards = shards.master_of(slot);
        const ClusterNode* from_slots = slots.master_of(slot);
        ASSERT_NE(from_shards, nullptr) << slot;
        ASSERT_NE(from_slots, nullptr) << slot;
        ASSERT_EQ(from_shards->id, ids_[m]) << slot;
        ASSERT_EQ(from_slots->id, ids_[m]) << slot;
        ASSERT_EQ(from_shards->host, "127.0.0.1");
        ASSERT_EQ(from_slots->host, "127.0.0.1");
        ASSERT_EQ(from_shards->port, nodes_[m].server->port());
        ASSERT_EQ(from_slots->port, nodes_[m].server->port());
      }
    }
    for (const ClusterTopology* topology : {&shards, &slots}) {
      ASSERT_EQ(topology->nodes.size(), 4u);
      for (std::size_t i = 0; i < 4; ++i) {
        const ClusterNode* node = find(*topology, ids_[i]);
        ASSERT_NE(node, nullptr) << ids_[i];
        EXPECT_EQ(node->port, nodes_[i].server->port());
        EXPECT_EQ(node->ip, "127.0.0.1");
        EXPECT_EQ(node->role, i < 3 ? NodeRole::kMaster : NodeRole::kReplica);
        EXPECT_EQ(node->health, NodeHealth::kOnline);
      }
    }
  }
}

// A key whose slot belongs to master `owner`.
std::string key_of_master(std::size_t owner, const std::string& prefix) {
  for (int i = 0;; ++i) {
    std::string key = prefix + std::to_string(i);
    const int slot = key_slot(key);
    if (slot >= kRanges[owner].start && slot <= kRanges[owner].end) return key;
  }
}

std::optional<Redirect> redirect_of(Client& client, std::initializer_list<std::string_view> args) {
  try {
    client.command(args);
  } catch (const ReplyError& error) {
    return parse_redirect(error.server_message());
  }
  ADD_FAILURE() << "no error reply";
  return std::nullopt;
}

TEST_F(ClusterTopologyIntegrationTest, MovedNamesTheSlotAndItsMaster) {
  for (std::size_t owner = 1; owner < 3; ++owner) {
    const std::string key = key_of_master(owner, "moved:");
    const std::optional<Redirect> redirect = redirect_of(*clients_[0], {"GET", key});
    ASSERT_TRUE(redirect.has_value());
    EXPECT_EQ(*redirect, (Redirect{RedirectKind::kMoved, key_slot(key), "127.0.0.1",
                                   nodes_[owner].server->port()}));
  }
  // Not a redirect: the server's other errors.
  try {
    clients_[0]->command({"MGET", key_of_master(0, "a"), key_of_master(1, "b")});
    ADD_FAILURE() << "no CROSSSLOT";
  } catch (const ReplyError& error) {
    EXPECT_EQ(error.prefix(), "CROSSSLOT");
    EXPECT_EQ(parse_redirect(error.server_message()), std::nullopt);
  }
}

TEST_F(ClusterTopologyIntegrationTest, AskNamesTheNodeASlotIsMigratingTo) {
  // A missing key of a slot that master 0 is migrating to master 1.
  const std::string key = key_of_master(0, "ask:");
  const std::string slot = std::to_string(key_slot(key));
  clients_[1]->command({"CLUSTER", "SETSLOT", slot, "IMPORTING", ids_[0]}).check();
  clients_[0]->command({"CLUSTER", "SETSLOT", slot, "MIGRATING", ids_[1]}).check();
  const std::optional<Redirect> redirect = redirect_of(*clients_[0], {"GET", key});
  clients_[0]->command({"CLUSTER", "SETSLOT", slot, "STABLE"}).check();
  clients_[1]->command({"CLUSTER", "SETSLOT", slot, "STABLE"}).check();
  ASSERT_TRUE(redirect.has_value());
  EXPECT_EQ(*redirect,
            (Redirect{RedirectKind::kAsk, key_slot(key), "127.0.0.1", nodes_[1].server->port()}));
}

// Puts a node's config back when the test ends, passed or failed.
class ConfigRestorer {
 public:
  ConfigRestorer(Client& client, std::string name)
      : client_(client),
        name_(std::move(name)),
        value_(client.command({"CONFIG", "GET", name_}).array().at(1).str()) {}
  ~ConfigRestorer() {
    try {
      client_.command({"CONFIG", "SET", name_, value_});
    } catch (const Error& error) {
      ADD_FAILURE() << "could not restore " << name_ << ": " << error.what();
    }
  }
  ConfigRestorer(const ConfigRestorer&) = delete;
  ConfigRestorer& operator=(const ConfigRestorer&) = delete;

 private:
  Client& client_;
  std::string name_;
  std::string value_;
};

TEST_F(ClusterTopologyIntegrationTest, EndpointPreferencesGiveHostsAndRedirects) {
  // Node 1 answers; node 0 announces a hostname, the others none.
  Client& asked = *clients_[1];
  const ConfigRestorer preference(asked, "cluster-preferred-endpoint-type");
  const ConfigRestorer hostname(*clients_[0], "cluster-announce-hostname");
  const std::string key_of_0 = key_of_master(0, "endpoint:");
  const std::string key_of_2 = key_of_master(2, "endpoint:");
  const int port_of_0 = nodes_[0].server->port();
  const int port_of_2 = nodes_[2].server->port();

  // unknown-endpoint: no endpoint at all (SHARDS "", SLOTS nil, MOVED ":port");
  // the topology falls back to the ip, a redirect to the host that replied.
  asked.command({"CONFIG", "SET", "cluster-preferred-endpoint-type", "unknown-endpoint"}).check();
  for (const ClusterTopology& topology :
       {parse_cluster_shards(asked.command({"CLUSTER", "SHARDS"})),
        parse_cluster_slots(asked.command({"CLUSTER", "SLOTS"}))}) {
    ASSERT_EQ(topology.assigned_slots(), static_cast<std::size_t>(kClusterSlots));
    EXPECT_EQ(topology.master_of(key_slot(key_of_0))->host, "127.0.0.1");
    EXPECT_EQ(topology.master_of(key_slot(key_of_2))->port, port_of_2);
  }
  EXPECT_EQ(redirect_of(asked, {"GET", key_of_2}),
            (Redirect{RedirectKind::kMoved, key_slot(key_of_2), "", port_of_2}));

  // hostname: node 0's hostname; "?" for the nodes without one, which falls
  // back to the ip in the topology and to the host that replied in a redirect.
  clients_[0]->command({"CONFIG", "SET", "cluster-announce-hostname", "node-zero.test"}).check();
  asked.command({"CONFIG", "SET", "cluster-preferred-endpoint-type", "hostname"}).check();
  wait_until("node 1 knows node 0's hostname", [&] {
    const ClusterTopology shards = parse_cluster_shards(asked.command({"CLUSTER", "SHARDS"}));
    const ClusterNode* zero = find(shards, ids_[0]);
    return zero != nullptr && zero->hostname == "node-zero.test";
  });
  for (const ClusterTopology& topology :
       {parse_cluster_shards(asked.command({"CLUSTER", "SHARDS"})),
        parse_cluster_slots(asked.command({"CLUSTER", "SLOTS"}))}) {
    ASSERT_EQ(topology.assigned_slots(), static_cast<std::size_t>(kClusterSlots));
    const ClusterNode* zero = topology.master_of(key_slot(key_of_0));
    EXPECT_EQ(zero->host, "node-zero.test");
    EXPECT_EQ(zero->ip, "127.0.0.1");
    EXPECT_EQ(zero->port, port_of_0);
    EXPECT_EQ(topology.master_of(key_slot(key_of_2))->host, "127.0.0.1");
  }
  EXPECT_EQ(redirect_of(asked, {"GET", key_of_0}),
            (Redirect{RedirectKind::kMoved, key_slot(key_of_0), "node-zero.test", port_of_0}));
  EXPECT_EQ(redirect_of(asked, {"GET", key_of_2}),
            (Redirect{RedirectKind::kMoved, key_slot(key_of_2), "", port_of_2}));
}

}  // namespace
}  // namespace prodsafe::redis::detail
