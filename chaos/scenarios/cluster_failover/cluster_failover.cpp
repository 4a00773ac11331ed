// cluster_failover: worker processes place orders through the idempotency
// wrapper on a Redis Cluster (redis-cluster:// URL; 3 masters with a replica
// each, cluster-node-timeout 1000 ms, every node appendonly with appendfsync
// always) while its masters change, round after round, alternating:
//   SIGKILL           a master is killed, the cluster promotes its replica,
//                     the old master is restarted and rejoins as a replica;
//   CLUSTER FAILOVER  a replica takes over from its live master by hand (the
//                     master stops writes until the replica has caught up:
//                     graceful, it should lose nothing; measured).
// The next round starts once the cluster is whole again.
//
// As in failover (Sentinel): replication is asynchronous (WAIT narrows the
// window, it is not consensus), so exactly-once is MEASURED (orders executed
// twice, acknowledged claims and commits lost, time to resume:
// chaos/framework/failover_trial.hpp); asserted are nothing lost outright, no
// worker hung or gave up, every round ran.
//
// Trials, one after the other, each on a fresh cluster:
//   async  durability off (FailoverFleet::wait_replicas = 0);
//   wait1  WrapperOptions::durability WAIT 1 (250 ms) after every claim and
//          commit (wait_replicas = 1): while a shard has no replica (its
//          killed master not yet back), its claims fall short and are
//          retried (counted).
//
// Needs the embedded servers (it kills them): skipped with --redis, and with
// --tls (the cluster runs plain TCP).
#include <algorithm>
#include <functional>
#include <string>

#include <fmt/format.h>

#include "chaos/framework/failover_trial.hpp"
#include "chaos/framework/scenario.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_cluster.hpp"
#include "prodsafe/redis/connection.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/slot.hpp"

namespace prodsafe::chaos {
namespace {

using Clock = std::chrono::steady_clock;

struct Sizes {
  std::size_t workers;
  std::size_t orders;
  milliseconds request_gap;
  std::size_t rounds;  // kills and manual failovers, alternating, a kill first
  milliseconds deadline;
};

constexpr milliseconds kPromotionWithin{30000};
constexpr milliseconds kRejoinWithin{30000};

template <class T>
T& pick(std::vector<T*> nodes, ScenarioContext& context, const char* what) {
  if (nodes.empty()) throw StoreUnavailable(fmt::format("cluster_failover: no {} answers", what));
  return *nodes[std::uniform_int_distribution<std::size_t>(0, nodes.size() - 1)(context.random())];
}

// The keys of the shard `node` belongs to (as master or replica), by the
// slot ranges it names in CLUSTER SLOTS now: what a fault of that shard cuts
// off, so that the time to resume is measured on them, not on the other
// shards' keys that never stopped.
std::function<bool(std::string_view)> shard_keys(const embedded::RedisServer& node) {
  redis::Connection connection(
      redis::parse_url(node.url()),
      redis::Options{.connect_timeout = milliseconds(1000), .command_timeout = milliseconds(2000)});
  std::vector<std::pair<long long, long long>> ranges;
  const redis::Reply slots = connection.command({"CLUSTER", "SLOTS"});
  for (const redis::Reply& range : slots.check("CLUSTER SLOTS").array()) {
    const auto& items = range.array();
    for (std::size_t i = 2; i < items.size(); ++i) {
      if (items[i].array().at(1).integer() != node.port()) continue;
      ranges.emplace_back(items[0].integer(), items[1].integer());
      break;
    }
  }
  if (ranges.empty())
    throw StoreUnavailable(fmt::format("cluster_failover: node {} serves no slots", node.port()));
  return [ranges](std::string_view key) {
    const int slot = redis::key_slot(key);
    return std::any_of(ranges.begin(), ranges.end(), [slot](const auto& range) {
      return slot >= range.first && slot <= range.second;
    });
  };
}

FaultRound kill_master(embedded::RedisCluster& cluster, ScenarioContext& context) {
  embedded::RedisServer& master = pick(cluster.masters(), context, "master");
  FaultRound round{.kind = "SIGKILL master", .affects = shard_keys(master)};
  round.at = Clock::now();
  const embedded::RedisCluster::Failover failover = cluster.kill_master(master, kPromotionWithin);
  round.promoted = failover.elapsed;
  master.restart();
  cluster.wait_until_replica_of(master, *failover.promoted, kRejoinWithin);
  cluster.wait_until_ok(kRejoinWithin, cluster.node_count());
  round.healed = std::chrono::duration_cast<milliseconds>(Clock::now() - round.at);
  return round;
}

FaultRound manual_failover(embedded::RedisCluster& cluster, ScenarioContext& context) {
  embedded::RedisServer& replica = pick(cluster.replicas(), context, "replica");
  FaultRound round{.kind = "CLUSTER FAILOVER", .affects = shard_keys(replica)};
  round.at = Clock::now();
  round.promoted = cluster.manual_failover(replica, kPromotionWithin).elapsed;
  round.healed = round.promoted;  // manual_failover waits for the old master to follow
  return round;
}

// One trial on a fresh cluster.
void run_trial(ScenarioContext& context, const Sizes& sizes, const std::string& tag,
               int wait_replicas) {
  embedded::RedisCluster cluster(
      {.node_timeout = milliseconds(1000), .appendonly = true, .config = {"appendfsync always"}});
  FailoverTrial trial(context, tag,
                      {.workers = sizes.workers,
                       .orders = sizes.orders,
                       .request_gap = sizes.request_gap,
                       .redis_url = cluster.url(),
                       .wait_replicas = wait_replicas});
  trial.run(
      sizes.rounds,
      [&](std::size_t round) {
        return round % 2 == 0 ? kill_master(cluster, context) : manual_failover(cluster, context);
      },
      sizes.deadline);
  trial.report({{"topology", "3 masters, 1 replica each"},
                {"node_timeout_ms", cluster.options().node_timeout.count()},
                {"config", {"appendonly yes", "appendfsync always"}}});
}

void run(ScenarioContext& context) {
  if (!context.embedded()) {
    context.skip("needs its own Redis Cluster (it kills masters); run without --redis");
    return;
  }
  if (context.options().embedded_tls) {
    context.skip("the embedded Redis Cluster runs plain TCP; run without --tls");
    return;
  }
  const Sizes sizes = context.quick() ? Sizes{3, 300, milliseconds(70), 2, milliseconds(180000)}
                                      : Sizes{4, 2000, milliseconds(45), 8, milliseconds(900000)};
  run_trial(context, sizes, "async", 0);
  run_trial(context, sizes, "wait1", 1);
}

[[maybe_unused]] const bool registered = register_scenario(
    {"cluster_failover",
     "orders placed on a Redis Cluster while a master is SIGKILLed (replica promoted) and "
     "replicas take over by CLUSTER FAILOVER, without and with WAIT 1; duplicates, lost "
     "acknowledgements and time to resume measured",
     run});

}  // namespace
}  // namespace prodsafe::chaos
