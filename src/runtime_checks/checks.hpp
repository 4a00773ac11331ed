// The validator's checks as pure functions of what the server reported, so
// every level of every check is testable without a server configured to
// produce it (a Redis older than 7.0, a server stuck loading).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cgroup_memory.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/info.hpp"
#include "prodsafe/runtime_checks/redis_runtime_validator.hpp"

namespace prodsafe::runtime_checks {

struct ServerFacts {
  redis::Info info;
  // CONFIG GET answers by parameter; nullopt when CONFIG is renamed, disabled
  // or not permitted (config_error says which).
  std::optional<std::map<std::string, std::string>> config;
  std::string config_error;
  std::vector<std::chrono::microseconds> latency;
  // Whether the Redis that answered runs on this machine (local_redis_pid),
  // and then the memory limit of its cgroup (nullopt: none).
  bool redis_is_local = false;
  std::optional<CgroupMemoryLimit> cgroup_memory;
  // CLUSTER INFO, for a node of a Redis Cluster; nullopt otherwise.
  std::optional<redis::Info> cluster_info;
};

// INFO, then CONFIG GET of the parameters INFO lacks (appendfsync, save,
// min-replicas-to-write, min-replicas-max-lag), CLUSTER INFO when
// `cluster_node`, then `options.latency_samples` timed PINGs.
ServerFacts collect_facts(redis::Client& client, const ValidatorOptions& options,
                          bool cluster_node = false);

CheckResult check_persistence(const ServerFacts& facts, const ValidatorOptions& options);
CheckResult check_persistence_health(const ServerFacts& facts);
CheckResult check_eviction_policy(const ServerFacts& facts);
CheckResult check_memory_headroom(const ServerFacts& facts, const ValidatorOptions& options);
CheckResult check_role(const ServerFacts& facts);
CheckResult check_version(const ServerFacts& facts);
CheckResult check_loading(const ServerFacts& facts);
CheckResult check_latency(const ServerFacts& facts, const ValidatorOptions& options);

// Every check above, in that order (latency only when samples were taken).
std::vector<CheckResult> evaluate(const ServerFacts& facts, const ValidatorOptions& options);

// A server of a Sentinel topology or a cluster, which the topology says is
// a "master" or a "replica": is it?
CheckResult check_topology_role(const ServerFacts& facts, std::string_view expected_role);
// A master: min-replicas-to-write, which bounds what a master cut off from
// its replicas acknowledges (and a failover then discards).
CheckResult check_min_replicas(const ServerFacts& facts);
// A replica: whether its link to the master is up.
CheckResult check_replication_link(const ServerFacts& facts);
// A cluster node: cluster_state from CLUSTER INFO.
CheckResult check_cluster_state(const ServerFacts& facts);

// evaluate() for a server of a topology: check_topology_role() in place of
// check_role(), then check_min_replicas() (a master) or
// check_replication_link() (a replica), and check_cluster_state() when the
// facts have CLUSTER INFO.
std::vector<CheckResult> evaluate_node(const ServerFacts& facts, const ValidatorOptions& options,
                                       std::string_view expected_role);

}  // namespace prodsafe::runtime_checks
