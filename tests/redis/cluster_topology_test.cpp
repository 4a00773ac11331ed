// parse_cluster_shards(), parse_cluster_slots() and parse_redirect() on
// replies built by hand: real shapes, and garbage that must be refused
// (cluster_topology_integration_test.cpp reads real replies).
#include "cluster_topology.hpp"

#include <functional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/slot.hpp"

namespace prodsafe::redis::detail {
namespace {

using ::testing::HasSubstr;

Reply str(std::string value) { return Reply::string(std::move(value)); }
Reply num(long long value) { return Reply::integer(value); }
Reply arr(std::vector<Reply> elements) { return Reply::array(std::move(elements)); }

std::string node_id(char c) { return std::string(40, c); }

struct ShardNode {
  std::string id{};
  int port = 0;
  std::string ip = "127.0.0.1";
  std::string endpoint = "127.0.0.1";
  std::string role = "master";
  std::string health = "online";
  int tls_port = 0;
  std::string hostname{};
};

// One node of CLUSTER SHARDS as Redis 7.0 sends it in RESP2.
Reply shard_node(const ShardNode& n) {
  std::vector<Reply> fields = {str("id"), str(n.id)};
  if (n.port != 0) {
    fields.push_back(str("port"));
    fields.push_back(num(n.port));
  }
  if (n.tls_port != 0) {
    fields.push_back(str("tls-port"));
    fields.push_back(num(n.tls_port));
  }
  for (const auto& [field, value] :
       {std::pair<std::string, std::string>{"ip", n.ip}, {"endpoint", n.endpoint}}) {
    fields.push_back(str(field));
    fields.push_back(str(value));
  }
  if (!n.hostname.empty()) {
    fields.push_back(str("hostname"));
    fields.push_back(str(n.hostname));
  }
  fields.push_back(str("role"));
  fields.push_back(str(n.role));
  fields.push_back(str("replication-offset"));
  fields.push_back(num(12345));
  fields.push_back(str("health"));
  fields.push_back(str(n.health));
  return arr(std::move(fields));
}

Reply shard(const std::vector<long long>& slots, const std::vector<ShardNode>& nodes) {
  std::vector<Reply> bounds;
  for (const long long slot : slots) bounds.push_back(num(slot));
  std::vector<Reply> listed;
  for (const ShardNode& n : nodes) listed.push_back(shard_node(n));
  return arr({str("slots"), arr(std::move(bounds)), str("nodes"), arr(std::move(listed))});
}

// A three-master cluster with a replica each, as CLUSTER SHARDS shows it.
Reply three_shards() {
  return arr({
      shard({0, 5460}, {{.id = node_id('a'), .port = 7000},
                        {.id = node_id('d'), .port = 7003, .role = "replica"}}),
      shard({5461, 10922}, {{.id = node_id('b'), .port = 7001},
                            {.id = node_id('e'), .port = 7004, .role = "replica"}}),
      shard({10923, 16383}, {{.id = node_id('c'), .port = 7002},
                             {.id = node_id('f'), .port = 7005, .role = "replica"}}),
  });
}

// CLUSTER SLOTS node: [endpoint, port, id, {metadata}].
Reply slots_node(Reply endpoint, long long port, const std::string& id,
                 std::vector<Reply> metadata = {}) {
  return arr({std::move(endpoint), num(port), str(id), arr(std::move(metadata))});
}

Reply three_ranges() {
  const Reply ip = str("127.0.0.1");
  return arr({
      arr({num(0), num(5460), slots_node(ip, 7000, node_id('a')),
           slots_node(ip, 7003, node_id('d'))}),
      arr({num(5461), num(10922), slots_node(ip, 7001, node_id('b')),
           slots_node(ip, 7004, node_id('e'))}),
      arr({num(10923), num(16383), slots_node(ip, 7002, node_id('c')),
           slots_node(ip, 7005, node_id('f'))}),
  });
}

std::string protocol_error(const std::function<void()>& parse) {
  try {
    parse();
  } catch (const ProtocolError& error) {
    return error.what();
  }
  return "(no ProtocolError)";
}

std::string shards_error(const Reply& reply) {
  return protocol_error([&] { (void)parse_cluster_shards(reply); });
}
std::string slots_error(const Reply& reply) {
  return protocol_error([&] { (void)parse_cluster_slots(reply); });
}

void expect_three_masters(const ClusterTopology& topology) {
  ASSERT_EQ(topology.slot_master.size(), static_cast<std::size_t>(kClusterSlots));
  EXPECT_EQ(topology.assigned_slots(), static_cast<std::size_t>(kClusterSlots));
  const std::vector<std::pair<int, char>> expected = {{0, 'a'},     {5460, 'a'},  {5461, 'b'},
                                                      {10922, 'b'}, {10923, 'c'}, {16383, 'c'}};
  for (const auto& [slot, id] : expected) {
    const ClusterNode* master = topology.master_of(slot);
    ASSERT_NE(master, nullptr) << slot;
    EXPECT_EQ(master->id, node_id(id)) << slot;
    EXPECT_EQ(master->role, NodeRole::kMaster);
    EXPECT_EQ(master->host, "127.0.0.1");
    EXPECT_EQ(master->port, 7000 + (id - 'a'));
  }
  EXPECT_EQ(topology.master_of(-1), nullptr);
  EXPECT_EQ(topology.master_of(kClusterSlots), nullptr);
  ASSERT_EQ(topology.nodes.size(), 6u);
  for (const ClusterNode& node : topology.nodes) {
    if (node.role == NodeRole::kMaster) continue;
    ASSERT_GE(node.master, 0) << node.id;
    const ClusterNode& master = topology.nodes[static_cast<std::size_t>(node.master)];
    EXPECT_EQ(node.port - 3, master.port) << "replica " << node.id;
  }
}

// ---- CLUSTER SHARDS ----

TEST(ClusterShardsTest, ThreeShardsAssignEverySlotToItsMaster) {
  expect_three_masters(parse_cluster_shards(three_shards()));
}

TEST(ClusterShardsTest, ShardsWithSeveralRangesAndNoneAtAll) {
  const ClusterTopology topology = parse_cluster_shards(arr({
      shard({0, 99, 200, 200, 1000, 1999}, {{.id = node_id('a'), .port = 7000}}),
      shard({100, 199}, {{.id = node_id('b'), .port = 7001}}),
      shard({}, {{.id = node_id('c'), .port = 7002}}),  // a master without slots yet
  }));
  EXPECT_EQ(topology.nodes.size(), 3u);
  EXPECT_EQ(topology.assigned_slots(), 100u + 1u + 1000u + 100u);
  EXPECT_EQ(topology.master_of(99)->id, node_id('a'));
  EXPECT_EQ(topology.master_of(100)->id, node_id('b'));
  EXPECT_EQ(topology.master_of(199)->id, node_id('b'));
  EXPECT_EQ(topology.master_of(200)->id, node_id('a'));
  EXPECT_EQ(topology.master_of(201), nullptr);
  EXPECT_EQ(topology.master_of(1999)->id, node_id('a'));
  EXPECT_EQ(topology.master_of(2000), nullptr);
  EXPECT_EQ(parse_cluster_shards(arr({})).assigned_slots(), 0u);
}

TEST(ClusterShardsTest, HostIsTheEndpointElseTheIp) {
  const ClusterTopology topology = parse_cluster_shards(arr({
      shard({0, 0}, {{.id = node_id('a'),
                      .port = 7000,
                      .ip = "10.0.0.1",
                      .endpoint = "redis-a.example",
                      .hostname = "redis-a.example"}}),
      shard({1, 1}, {{.id = node_id('b'), .port = 7001, .ip = "10.0.0.2", .endpoint = ""}}),
      shard({2, 2}, {{.id = node_id('c'), .port = 7002, .ip = "10.0.0.3", .endpoint = "?"}}),
      shard({3, 3}, {{.id = node_id('d'), .port = 7003, .ip = "", .endpoint = ""}}),
      shard({4, 4}, {{.id = node_id('e'), .port = 7004, .ip = "::1", .endpoint = "::1"}}),
  }));
  EXPECT_EQ(topology.master_of(0)->host, "redis-a.example");
  EXPECT_EQ(topology.master_of(0)->ip, "10.0.0.1");
  EXPECT_EQ(topology.master_of(0)->hostname, "redis-a.example");
  EXPECT_EQ(topology.master_of(1)->host, "10.0.0.2");
  EXPECT_EQ(topology.master_of(2)->host, "10.0.0.3");
  EXPECT_EQ(topology.master_of(3)->host, "");  // the host that replied
  EXPECT_EQ(topology.master_of(4)->host, "::1");
}

TEST(ClusterShardsTest, TlsPortsAndUnknownFields) {
  Reply node = shard_node({.id = node_id('a'), .port = 7000, .tls_port = 17000});
  std::vector<Reply> fields = node.array();
  fields.push_back(str("availability-zone"));  // a field of a later server
  fields.push_back(arr({str("anything"), num(1)}));
  const ClusterTopology topology = parse_cluster_shards(
      arr({arr({str("slots"), arr({num(0), num(16383)}), str("nodes"),
                arr({arr(std::move(fields))}), str("shard-id"), str("0123")})}));
  EXPECT_EQ(topology.master_of(0)->port, 7000);
  EXPECT_EQ(topology.master_of(0)->tls_port, 17000);
  // A TLS-only node has no "port".
  const ClusterTopology tls_only =
      parse_cluster_shards(arr({shard({0, 1}, {{.id = node_id('a'), .tls_port = 17000}})}));
  EXPECT_EQ(tls_only.master_of(0)->port, 0);
  EXPECT_EQ(tls_only.master_of(0)->tls_port, 17000);
}

TEST(ClusterShardsTest, AFailedMasterIsListedButRoutesNothing) {
  const ClusterTopology topology = parse_cluster_shards(arr({
      shard({0, 8191}, {{.id = node_id('a'), .port = 7000, .health = "fail"},
                        {.id = node_id('d'), .port = 7003, .role = "replica"}}),
      shard({8192, 16383}, {{.id = node_id('b'), .port = 7001}}),
  }));
  ASSERT_EQ(topology.nodes.size(), 3u);
  EXPECT_EQ(topology.nodes[0].health, NodeHealth::kFailed);
  EXPECT_EQ(topology.master_of(0), nullptr);
  EXPECT_EQ(topology.master_of(8191), nullptr);
  EXPECT_EQ(topology.master_of(8192)->id, node_id('b'));
  EXPECT_EQ(topology.assigned_slots(), 8192u);
  // The documentation's spelling reads the same.
  const ClusterTopology documented = parse_cluster_shards(
      arr({shard({0, 1}, {{.id = node_id('a'), .port = 7000, .health = "failed"}})}));
  EXPECT_EQ(documented.master_of(0), nullptr);
  EXPECT_EQ(documented.nodes[0].health, NodeHealth::kFailed);
}

TEST(ClusterShardsTest, AfterAFailoverTheNewMasterRoutesTheShard) {
  // Redis 7.2 keeps the failed old master in its shard, beside the promoted replica.
  const ClusterTopology topology = parse_cluster_shards(arr({
      shard({0, 16383},
            {{.id = node_id('a'), .port = 7000, .health = "fail"},
             {.id = node_id('d'), .port = 7003},
             {.id = node_id('e'), .port = 7004, .role = "replica", .health = "loading"}}),
  }));
  EXPECT_EQ(topology.master_of(0)->id, node_id('d'));
  ASSERT_EQ(topology.nodes.size(), 3u);
  EXPECT_EQ(topology.nodes[0].id, node_id('d'));  // the routing master comes first
  const ClusterNode& replica = topology.nodes[2];
  EXPECT_EQ(replica.health, NodeHealth::kLoading);
  EXPECT_EQ(replica.master, 0);
}

TEST(ClusterShardsTest, GarbageIsRefusedWithProtocolError) {
  const auto node_a = [](ShardNode n = {}) {
    if (n.id.empty()) n.id = node_id('a');
    if (n.port == 0 && n.tls_port == 0) n.port = 7000;
    return n;
  };
  EXPECT_THAT(shards_error(Reply::nil()), HasSubstr("the reply is nil, not an array"));
  EXPECT_THAT(shards_error(Reply::error("ERR This instance has cluster support disabled")),
              HasSubstr("not an array"));
  EXPECT_THAT(shards_error(arr({num(1)})), HasSubstr("shard 0 is integer, not an array"));
  EXPECT_THAT(shards_error(arr({arr({str("slots")})})), HasSubstr("not field-value pairs"));
  EXPECT_THAT(shards_error(arr({arr({str("slots"), arr({})})})), HasSubstr("has no 'nodes'"));
  EXPECT_THAT(shards_error(arr({arr({str("nodes"), arr({})})})), HasSubstr("has no 'slots'"));
  EXPECT_THAT(shards_error(arr({arr({num(1), arr({})})})), HasSubstr("not a string"));
  EXPECT_THAT(shards_error(arr(
                  {arr({str("slots"), arr({}), str("slots"), arr({}), str("nodes"), arr({})})})),
              HasSubstr("has the field 'slots' twice"));
  // Slots.
  EXPECT_THAT(shards_error(arr({shard({0}, {node_a()})})), HasSubstr("not start-end pairs"));
  EXPECT_THAT(shards_error(arr({shard({0, 16384}, {node_a()})})),
              HasSubstr("slot 16384, outside [0, 16384)"));
  EXPECT_THAT(shards_error(arr({shard({-1, 10}, {node_a()})})), HasSubstr("slot -1"));
  EXPECT_THAT(shards_error(arr({shard({10, 5}, {node_a()})})),
              HasSubstr("slot range 10-5 ends before it starts"));
  EXPECT_THAT(shards_error(arr({arr({str("slots"), arr({str("0"), str("10")}), str("nodes"),
                                     arr({shard_node(node_a())})})})),
              HasSubstr("is string, not an integer"));
  EXPECT_THAT(shards_error(arr({shard({0, 10, 5, 20}, {node_a()})})),
              HasSubstr("slot 5 (in range 5-20) is claimed twice"));
  EXPECT_THAT(shards_error(arr({shard({0, 10}, {node_a()}),
                                shard({10, 20}, {{.id = node_id('b'), .port = 7001}})})),
              HasSubstr("slot 10 (in range 10-20) is claimed twice"));
  // Masters.
  EXPECT_THAT(shards_error(arr({shard({0, 10}, {})})),
              HasSubstr("serves slots but lists no master"));
  EXPECT_THAT(shards_error(arr({shard({0, 10}, {node_a({.role = "replica"})})})),
              HasSubstr("serves slots but lists no master"));
  EXPECT_THAT(shards_error(arr({shard({0, 10}, {node_a(), {.id = node_id('b'), .port = 7001}})})),
              HasSubstr("two masters that have not failed"));
  EXPECT_THAT(shards_error(arr({shard({0, 10}, {{.id = node_id('a')}})})),
              HasSubstr("serves slots but has no port"));
  EXPECT_THAT(shards_error(arr(
                  {shard({0, 10}, {node_a()}), shard({11, 20}, {{.id = node_id('b'), .port = 7001},
                                                                node_a({.role = "replica"})})})),
              HasSubstr("listed both as a master and as a replica"));
  // Nodes.
  EXPECT_THAT(shards_error(arr({shard({0, 10}, {node_a({.port = 70000})})})),
              HasSubstr("'port' of node 0 of shard 0 is 70000, outside [1, 65535]"));
  EXPECT_THAT(shards_error(arr({shard({0, 10}, {node_a({.port = -1})})})),
              HasSubstr("is -1, outside"));
  EXPECT_THAT(shards_error(arr({shard({0, 10}, {node_a({.role = "boss"})})})),
              HasSubstr("'boss', neither master nor replica"));
  EXPECT_THAT(shards_error(arr({arr({str("slots"), arr({}), str("nodes"),
                                     arr({arr({str("role"), str("master")})})})})),
              HasSubstr("node 0 of shard 0 has no id"));
  EXPECT_THAT(shards_error(arr({arr({str("slots"), arr({}), str("nodes"),
                                     arr({arr({str("id"), str(node_id('a'))})})})})),
              HasSubstr("has no role"));
  EXPECT_THAT(
      shards_error(arr({arr({str("slots"), arr({}), str("nodes"),
                             arr({arr({str("id"), num(5), str("role"), str("master")})})})})),
      HasSubstr("'id' of node 0 of shard 0 is integer, not a string"));
  EXPECT_THAT(shards_error(arr({arr({str("slots"), arr({}), str("nodes"), arr({num(3)})})})),
              HasSubstr("node 0 of shard 0 is integer, not an array"));
  // Every message says what to do.
  EXPECT_THAT(shards_error(Reply::nil()), HasSubstr("CLUSTER SHARDS: the reply is malformed"));
  EXPECT_THAT(shards_error(Reply::nil()), HasSubstr("check that the server is a Redis Cluster"));
}

// ---- CLUSTER SLOTS ----

TEST(ClusterSlotsTest, ThreeRangesAssignEverySlotToItsMaster) {
  expect_three_masters(parse_cluster_slots(three_ranges()));
}

TEST(ClusterSlotsTest, AMasterOfSeveralRangesIsOneNode) {
  const Reply a = slots_node(str("127.0.0.1"), 7000, node_id('a'));
  const Reply b = slots_node(str("127.0.0.1"), 7001, node_id('b'));
  const Reply r = slots_node(str("127.0.0.1"), 7002, node_id('r'));
  const ClusterTopology topology = parse_cluster_slots(arr({
      arr({num(0), num(99), a, r}),
      arr({num(100), num(199), b}),
      arr({num(200), num(200), a, r}),
  }));
  ASSERT_EQ(topology.nodes.size(), 3u);
  EXPECT_EQ(topology.master_of(200)->id, node_id('a'));
  EXPECT_EQ(topology.master_of(0), topology.master_of(200));
  EXPECT_EQ(topology.master_of(150)->id, node_id('b'));
  EXPECT_EQ(topology.master_of(201), nullptr);
  EXPECT_EQ(topology.nodes[1].id, node_id('r'));
  EXPECT_EQ(topology.nodes[1].role, NodeRole::kReplica);
  EXPECT_EQ(topology.nodes[1].master, 0);
  EXPECT_EQ(topology.assigned_slots(), 201u);
}

TEST(ClusterSlotsTest, EndpointsAndMetadata) {
  const ClusterTopology topology = parse_cluster_slots(arr({
      // cluster-preferred-endpoint-type hostname: the ip comes as metadata.
      arr({num(0), num(0),
           slots_node(str("redis-a.example"), 7000, node_id('a'), {str("ip"), str("10.0.0.1")})}),
      // unknown-endpoint: nil, and the ip as metadata.
      arr({num(1), num(1),
           slots_node(Reply::nil(), 7001, node_id('b'), {str("ip"), str("10.0.0.2")})}),
      // hostname preferred but not set.
      arr({num(2), num(2), slots_node(str("?"), 7002, node_id('c'), {str("ip"), str("10.0.0.3")})}),
      // ip preferred, hostname known.
      arr({num(3), num(3),
           slots_node(str("10.0.0.4"), 7003, node_id('d'), {str("hostname"), str("redis-d")})}),
      // Redis 4-6: [ip, port, id]; Redis 3: [ip, port].
      arr({num(4), num(4), arr({str("10.0.0.5"), num(7004), str(node_id('e'))})}),
      arr({num(5), num(5), arr({str("10.0.0.6"), num(7005)})}),
      // nil endpoint and no ip: the host that replied.
      arr({num(6), num(6), slots_node(Reply::nil(), 7006, node_id('g'))}),
  }));
  EXPECT_EQ(topology.master_of(0)->host, "redis-a.example");
  EXPECT_EQ(topology.master_of(0)->ip, "10.0.0.1");
  EXPECT_EQ(topology.master_of(1)->host, "10.0.0.2");
  EXPECT_EQ(topology.master_of(2)->host, "10.0.0.3");
  EXPECT_EQ(topology.master_of(3)->host, "10.0.0.4");
  EXPECT_EQ(topology.master_of(3)->ip, "10.0.0.4");
  EXPECT_EQ(topology.master_of(3)->hostname, "redis-d");
  EXPECT_EQ(topology.master_of(4)->id, node_id('e'));
  EXPECT_EQ(topology.master_of(5)->id, "");
  EXPECT_EQ(topology.master_of(5)->host, "10.0.0.6");
  EXPECT_EQ(topology.master_of(5)->port, 7005);
  EXPECT_EQ(topology.master_of(6)->host, "");
  EXPECT_EQ(topology.master_of(6)->port, 7006);
  EXPECT_EQ(topology.master_of(6)->health, NodeHealth::kOnline);
}

TEST(ClusterSlotsTest, GarbageIsRefusedWithProtocolError) {
  const Reply a = slots_node(str("127.0.0.1"), 7000, node_id('a'));
  EXPECT_THAT(slots_error(Reply::nil()), HasSubstr("CLUSTER SLOTS: the reply is malformed"));
  EXPECT_THAT(slots_error(arr({str("x")})), HasSubstr("range 0 is string, not an array"));
  EXPECT_THAT(slots_error(arr({arr({num(0), num(1)})})), HasSubstr("not at least start, end"));
  EXPECT_THAT(slots_error(arr({arr({num(0), num(16384), a})})), HasSubstr("slot 16384"));
  EXPECT_THAT(slots_error(arr({arr({num(-5), num(1), a})})), HasSubstr("slot -5"));
  EXPECT_THAT(slots_error(arr({arr({str("0"), num(1), a})})), HasSubstr("not an integer"));
  EXPECT_THAT(slots_error(arr({arr({num(9), num(1), a})})), HasSubstr("ends before it starts"));
  EXPECT_THAT(slots_error(arr({arr({num(0), num(10), a}), arr({num(10), num(11), a})})),
              HasSubstr("slot 10 (in range 10-11) is claimed twice"));
  EXPECT_THAT(slots_error(arr({arr({num(0), num(1), arr({str("h")})})})),
              HasSubstr("not at least endpoint and port"));
  EXPECT_THAT(slots_error(arr({arr({num(0), num(1), slots_node(str("h"), 0, node_id('a'))})})),
              HasSubstr("the port of the master of range 0 is 0"));
  EXPECT_THAT(slots_error(arr({arr({num(0), num(1), slots_node(str("h"), 65536, node_id('a'))})})),
              HasSubstr("65536, outside [1, 65535]"));
  EXPECT_THAT(slots_error(arr({arr({num(0), num(1), arr({num(1), num(7000)})})})),
              HasSubstr("the endpoint of the master of range 0 is integer"));
  EXPECT_THAT(slots_error(arr({arr({num(0), num(1), arr({str("h"), str("7000")})})})),
              HasSubstr("the port of the master of range 0 is string"));
  EXPECT_THAT(slots_error(arr(
                  {arr({num(0), num(1), slots_node(str("h"), 7000, node_id('a'), {str("ip")})})})),
              HasSubstr("not field-value pairs"));
  // A node that is a master here and a replica there.
  EXPECT_THAT(
      slots_error(arr({arr({num(0), num(1), a}),
                       arr({num(2), num(3), slots_node(str("h"), 7001, node_id('b')), a})})),
      HasSubstr("listed both as a master and as a replica"));
}

// ---- Every truncation and retyping of a valid reply ----

// Calls f(mutant) for each reply made from `reply` by removing one element of
// one array, or by replacing one value with one of another type.
void for_each_mutant(const Reply& reply, const std::function<void(const Reply&)>& f) {
  const std::vector<Reply> replacements = {Reply::nil(), num(7), str("7"), arr({})};
  for (const Reply& replacement : replacements) {
    if (replacement.type() != reply.type()) f(replacement);
  }
  if (reply.type() != Reply::Type::kArray) return;
  const std::vector<Reply>& elements = reply.array();
  for (std::size_t i = 0; i < elements.size(); ++i) {
    std::vector<Reply> shorter = elements;
    shorter.erase(shorter.begin() + static_cast<std::ptrdiff_t>(i));
    f(arr(std::move(shorter)));
    for_each_mutant(elements[i], [&](const Reply& child) {
      std::vector<Reply> changed = elements;
      changed[i] = child;
      f(arr(std::move(changed)));
    });
  }
}

// A mutant is refused, or routes each slot to the master the original routes
// it to (its endpoint may turn nil: "the host that replied"), or to none. With
// `replica_may_route`, also to a replica of that master: CLUSTER SLOTS tells
// master from replica by position only, so an entry that lost its master is a
// well-formed entry whose first replica is the master; no parser can tell.
void expect_never_misroutes(const Reply& original,
                            const std::function<ClusterTopology(const Reply&)>& parse,
                            bool replica_may_route = false) {
  const ClusterTopology truth = parse(original);
  std::size_t refused = 0;
  std::size_t accepted = 0;
  for_each_mutant(original, [&](const Reply& mutant) {
    ClusterTopology topology;
    try {
      topology = parse(mutant);
    } catch (const ProtocolError&) {
      ++refused;
      return;
    }
    ++accepted;
    ASSERT_EQ(topology.slot_master.size(), static_cast<std::size_t>(kClusterSlots));
    for (int slot = 0; slot < kClusterSlots; ++slot) {
      const ClusterNode* master = topology.master_of(slot);
      if (master == nullptr) continue;
      const ClusterNode* expected = truth.master_of(slot);
      ASSERT_NE(expected, nullptr) << "slot " << slot << " of " << mutant.debug_string();
      bool same = master->id == expected->id && master->port == expected->port &&
                  (master->host == expected->host || master->host.empty());
      if (!same && replica_may_route) {
        for (const ClusterNode& node : truth.nodes) {
          same = same || (node.role == NodeRole::kReplica && node.master >= 0 &&
                          &truth.nodes[static_cast<std::size_t>(node.master)] == expected &&
                          node.id == master->id && node.port == master->port);
        }
      }
      ASSERT_TRUE(same) << "slot " << slot << " goes to " << master->id << ":" << master->port
                        << " in " << mutant.debug_string();
    }
  });
  // Both kinds happen: the property is not vacuous.
  EXPECT_GT(refused, 100u);
  EXPECT_GT(accepted, 0u);
}

TEST(ClusterShardsTest, NoTruncationOrRetypingMisroutesASlot) {
  expect_never_misroutes(three_shards(), parse_cluster_shards);
}

TEST(ClusterSlotsTest, NoTruncationOrRetypingMisroutesASlot) {
  expect_never_misroutes(three_ranges(), parse_cluster_slots, /*replica_may_route=*/true);
}

// ---- MOVED and ASK ----

TEST(RedirectTest, MovedAndAsk) {
  EXPECT_EQ(parse_redirect("MOVED 3999 127.0.0.1:6381"),
            (Redirect{RedirectKind::kMoved, 3999, "127.0.0.1", 6381}));
  EXPECT_EQ(parse_redirect("ASK 3999 127.0.0.1:6381"),
            (Redirect{RedirectKind::kAsk, 3999, "127.0.0.1", 6381}));
  EXPECT_EQ(parse_redirect("MOVED 0 redis-a.example:7000"),
            (Redirect{RedirectKind::kMoved, 0, "redis-a.example", 7000}));
  EXPECT_EQ(parse_redirect("MOVED 16383 h:65535"),
            (Redirect{RedirectKind::kMoved, 16383, "h", 65535}));
}

TEST(RedirectTest, Ipv6AndMissingEndpoints) {
  EXPECT_EQ(parse_redirect("MOVED 1 ::1:7000"), (Redirect{RedirectKind::kMoved, 1, "::1", 7000}));
  EXPECT_EQ(parse_redirect("ASK 1 2001:db8::7:7000"),
            (Redirect{RedirectKind::kAsk, 1, "2001:db8::7", 7000}));
  EXPECT_EQ(parse_redirect("MOVED 1 [::1]:7000"), (Redirect{RedirectKind::kMoved, 1, "::1", 7000}));
  // Redis 7 with cluster-preferred-endpoint-type unknown-endpoint, or a
  // hostname it does not know: the host of the node that replied.
  EXPECT_EQ(parse_redirect("MOVED 3999 :6381"), (Redirect{RedirectKind::kMoved, 3999, "", 6381}));
  EXPECT_EQ(parse_redirect("ASK 3999 ?:6381"), (Redirect{RedirectKind::kAsk, 3999, "", 6381}));
}

TEST(RedirectTest, OtherErrorsAreNotRedirects) {
  for (const std::string_view message :
       {"ERR unknown command", "CROSSSLOT Keys in request don't hash to the same slot",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "CLUSTERDOWN The cluster is down", "MOVEDX 1 h:1", "moved 1 h:1", "ASKING", "", "MOVED"}) {
    EXPECT_EQ(parse_redirect(message), std::nullopt) << message;
  }
}

TEST(RedirectTest, MalformedRedirectsAreProtocolErrors) {
  for (const std::string_view message :
       {"MOVED ", "MOVED 1", "MOVED 1 ", "MOVED x h:1", "MOVED 16384 h:1", "MOVED -1 h:1",
        "MOVED 1 h", "MOVED 1 h:0", "MOVED 1 h:65536", "MOVED 1 h:", "MOVED 1 h:x",
        "MOVED 1 h:1 extra", "MOVED 1  h:1", "ASK 1.5 h:1", "ASK  1 h:1", "ASK 99999999999 h:1",
        "MOVED 1 h:-1", "MOVED +1 h:1"}) {
    const std::string error = protocol_error([&] { (void)parse_redirect(message); });
    EXPECT_THAT(error, HasSubstr("malformed redirection")) << message;
  }
  EXPECT_THAT(protocol_error([] { (void)parse_redirect("ASK 1 h"); }),
              HasSubstr("expected 'ASK <slot> <host>:<port>'"));
}

}  // namespace
}  // namespace prodsafe::redis::detail
