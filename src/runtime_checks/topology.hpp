// The checks of a Sentinel topology or a Redis Cluster: what the sentinels,
// or the cluster's slot map, say of the topology as a whole, then the checks
// of every master and replica it names (checks.hpp), each result carrying
// its node.
//
// Asking (ask_sentinels, ask_cluster) is kept apart from judging
// (evaluate_sentinels, evaluate_cluster), so every verdict is testable from
// made-up answers: a sentinel that disagrees, a quorum that cannot be
// reached, a shard without a replica.
//
// Thread safety: pure functions, and functions that use only the client
// they are given.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "../redis/cluster_topology.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/runtime_checks/check_result.hpp"
#include "prodsafe/runtime_checks/redis_runtime_validator.hpp"

namespace prodsafe::runtime_checks {

// A server the topology names, and what it says the server is.
struct TopologyNode {
  redis::HostPort address;
  std::string role;  // "master" or "replica"
};

using Fields = std::map<std::string, std::string>;

// What one sentinel answered about the URL's master.
struct SentinelView {
  enum class Outcome { kAnswered, kUnreachable, kUnknownMaster, kRefused };

  redis::HostPort sentinel;
  Outcome outcome = Outcome::kUnreachable;
  // Why it did not answer (kUnreachable, kRefused, kUnknownMaster).
  std::string problem;
  // SENTINEL MASTER's fields (ip, port, flags, quorum, num-other-sentinels...).
  Fields master;
  // SENTINEL REPLICAS (SENTINEL SLAVES before Redis 5.0): one set of fields
  // per replica (ip, port, flags...).
  std::vector<Fields> replicas;
  // Why the replicas could not be listed (both commands refused, or a reply
  // that is not a list); empty when they were.
  std::string replicas_problem;
  // SENTINEL CKQUORUM: whether it said OK, and its text (or error).
  bool quorum_ok = false;
  std::string quorum_reply;
};

// The checks of the topology as a whole and the data nodes to check next:
// masters first, then replicas.
struct TopologyFindings {
  std::vector<CheckResult> results;
  std::vector<TopologyNode> nodes;
};

// Asks every sentinel the URL lists, once even if listed twice (with
// Options::sentinel's credentials, within the client's connect_timeout and
// command_timeout) for SENTINEL MASTER, REPLICAS and CKQUORUM. A sentinel
// that cannot be reached or refuses is a view with that outcome, not an
// exception.
std::vector<SentinelView> ask_sentinels(const redis::Client& client);

// Per sentinel: "sentinel" (reachable, knows the master, names it with a
// readable ip, port and flags, sees it up, names the same master as the
// others; an unreadable answer is not counted) and "sentinel_quorum" (CKQUORUM, and at
// least 3 usable sentinels); for the topology: "replicas" (how many replicas
// the sentinels see in reach; WARNING when no sentinel naming the master
// could list them). The nodes: the master most sentinels name, and the
// replicas the first sentinel naming it that could list them lists, each
// address once. Throws StoreUnavailable when no
// sentinel answers (unreachable, or refusing: wrong credentials),
// ConfigError when every one that answered knows no master of that name.
TopologyFindings evaluate_sentinels(const std::vector<SentinelView>& views,
                                    const std::string& master_name);

// What the cluster's first seed to answer said: CLUSTER SHARDS, or CLUSTER
// SLOTS before Redis 7.0.
struct ClusterView {
  redis::HostPort seed;
  redis::detail::ClusterTopology topology;
};

// Asks the URL's seeds in turn until one answers with a slot map that
// parses (a garbled one is passed over, as the client's router does). Throws
// StoreUnavailable when none does (the message says why for each).
ClusterView ask_cluster(const redis::Client& client);

// For the cluster: "slot_coverage"; per master: "replicas" (its replicas
// the cluster does not mark failed; none is OK for a master without slots); per node the cluster
// marks failed: "cluster_health". The nodes: every master, then every replica (failed ones
// included, so that they are reported), at the address a client would use (`tls`, for
// rediss-cluster:// or Options::tls.enabled: the TLS port), each address
// once: where a failed entry shares its address with a live one (a node
// back with a new id), the live one is checked.
TopologyFindings evaluate_cluster(const ClusterView& view, bool tls);

// `results` reordered so that each node's are together: the topology's own
// (no node) first, then each node's in the order the node first appears;
// within a node, the order is kept.
std::vector<CheckResult> group_by_node(std::vector<CheckResult> results);

// The whole check of a redis-sentinel:// or redis-cluster:// client: the
// topology's checks, then each node's (evaluate_node), a node that cannot be
// reached being one ERROR result ("reachable"); grouped by node
// (group_by_node), so a master's "replicas" comes with its own checks.
std::vector<CheckResult> check_topology(const redis::Client& client,
                                        const ValidatorOptions& options);

}  // namespace prodsafe::runtime_checks
