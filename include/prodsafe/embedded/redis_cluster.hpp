// A private Redis Cluster for tests and the chaos suite: by default three
// masters with one replica each, every node a RedisServer (redis_server.hpp)
// with `cluster-enabled yes` on a free loopback port in its own temporary
// directory, joined by `redis-cli --cluster create`. Everything announces
// 127.0.0.1. Faults are the nodes' own (node(i).kill(), pause(), resume(),
// restart(): a restarted node keeps its nodes.conf and rejoins); which node
// is a master is asked live, since failovers change it.
//
//   RedisCluster cluster;                            // cluster_state:ok everywhere
//   RedisServer& owner = cluster.slot_owner(0);
//   const RedisCluster::Failover f = cluster.kill_master(owner, 20s);
//   // f.promoted now owns slot 0; f.elapsed is how long it took.
//
// The constructor returns once every node says cluster_state:ok, all 16384
// slots are served, and every node knows all the others. It throws what
// RedisServer throws (ConfigError when redis-server or redis-cli is not
// installed, IoError, StoreUnavailable), InvalidArgument for options out of
// range, StoreUnavailable with redis-cli's output when `--cluster create`
// fails, and Timeout (saying what it saw last) when the cluster does not
// settle within startup_timeout. The destructor kills every node and removes
// their directories; a constructor that throws half-way kills those it had
// started.
//
// Thread safety: not safe for concurrent use; drive a cluster from one
// thread at a time, and create it from a thread that outlives it (see
// RedisServer).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "prodsafe/embedded/redis_server.hpp"

namespace prodsafe::embedded {

struct RedisClusterOptions {
  // Masters: 3 (what redis-cli --cluster create needs at least) to 16.
  // Default: 3.
  int masters = 3;
  // Replicas of each master: 0 to 2. Default: 1.
  int replicas_per_master = 1;
  // `cluster-node-timeout`: a node silent this long is suspected failing.
  // At least 100 ms. Default: 1000 ms.
  std::chrono::milliseconds node_timeout{1000};
  // `appendonly yes` with `appendfsync everysec` on every node. Default:
  // false (no persistence at all, like RedisServer's default).
  bool appendonly = false;
  // Extra redis.conf lines for every node, written after the cluster's.
  // Default: none.
  std::vector<std::string> config{};
  // How long the constructor waits for `--cluster create` and for the
  // cluster to settle. Default: 60 s.
  std::chrono::milliseconds startup_timeout{60000};
  // The executables. Default: redis-server and redis-cli from PATH.
  std::string executable = "redis-server";
  std::string cli_executable = "redis-cli";
  // Keep the directories after destruction, for debugging. Default: false.
  bool keep_directories = false;
};

class RedisCluster {
 public:
  // A promotion: the replica that became master, and how long it took from
  // the fault (or the CLUSTER FAILOVER command) until every running node
  // said cluster_state:ok with all slots served.
  struct Failover {
    RedisServer* promoted = nullptr;
    std::chrono::milliseconds elapsed{0};
  };

  explicit RedisCluster(RedisClusterOptions options = {});
  ~RedisCluster();
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  [[nodiscard]] const RedisClusterOptions& options() const noexcept { return options_; }

  // Every node, in start order (the first `masters` began as masters, but
  // ask masters() which are now).
  [[nodiscard]] std::size_t node_count() const noexcept { return nodes_.size(); }
  [[nodiscard]] RedisServer& node(std::size_t index);
  // The node listening on `port`, or nullptr.
  [[nodiscard]] RedisServer* node_on_port(int port) noexcept;

  // The running, unpaused nodes whose ROLE is master, or slave, now. A node
  // that does not answer is in neither list.
  [[nodiscard]] std::vector<RedisServer*> masters();
  [[nodiscard]] std::vector<RedisServer*> replicas();
  // The running, unpaused nodes that say they replicate `master` (ROLE).
  [[nodiscard]] std::vector<RedisServer*> replicas_of(const RedisServer& master);

  // redis-cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,... (every node).
  [[nodiscard]] std::string url() const;

  // The master that serves `slot` (0 to 16383) now, as CLUSTER SHARDS on the
  // first running, unpaused node that answers says. Throws InvalidArgument
  // for a slot out of range, StoreUnavailable when no node answers or none
  // names a master for the slot (saying what each answered).
  [[nodiscard]] RedisServer& slot_owner(int slot);

  // Waits until every running, unpaused node says cluster_state:ok with all
  // 16384 slots ok and knows `known_nodes` nodes (0: do not check; when
  // checked, each node must also list every replica of the options as one).
  // Throws Timeout.
  void wait_until_ok(std::chrono::milliseconds timeout, std::size_t known_nodes = 0);

  // SIGKILLs `master`, then waits until one of its replicas is master and
  // the rest of the cluster is ok again. Throws InvalidArgument when
  // `master` is not a master with a replica, Timeout when no promotion
  // happens within `timeout`.
  Failover kill_master(RedisServer& master, std::chrono::milliseconds timeout);
  // Sends CLUSTER FAILOVER to `replica` and waits until it is master, its old
  // master its replica, and the cluster ok. Throws InvalidArgument when
  // `replica` is not a replica, ReplyError when the command is refused,
  // Timeout.
  Failover manual_failover(RedisServer& replica, std::chrono::milliseconds timeout);
  // Waits until `node` says (ROLE) it replicates `master` with the link
  // connected: how a killed and restarted old master is seen back. Throws
  // Timeout.
  void wait_until_replica_of(const RedisServer& node, const RedisServer& master,
                             std::chrono::milliseconds timeout);

 private:
  void create();
  // "master", "slave" or empty (not running, paused, not answering); for a
  // replica also the port it replicates and its link state ("connected").
  [[nodiscard]] std::string role(const RedisServer& node, int* master_port = nullptr,
                                 std::string* link = nullptr) const;

  RedisClusterOptions options_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace prodsafe::embedded
