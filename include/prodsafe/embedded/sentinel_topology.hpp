// A private Redis Sentinel topology for tests and the chaos suite: one master,
// one or two replicas and (by default) three sentinels, each a RedisServer
// (redis_server.hpp) on a free loopback port in its own temporary directory.
// Everything announces 127.0.0.1. Faults are the nodes' own: node(i).kill(),
// pause(), resume(), restart(); the wait_* methods then say when Sentinel has
// reacted.
//
//   SentinelTopology topology;                       // ready: synced, discovered
//   RedisServer& old = topology.master();
//   old.kill();
//   RedisServer& now = topology.wait_for_failover(old, 15s);
//   old.restart();
//   topology.wait_until_replica_of(old, now, 20s);
//
// The constructor returns once the replicas are in sync with the master and
// every sentinel names the master and sees every replica and every other
// sentinel, so a fault injected next is one Sentinel knows how to handle.
// It throws what RedisServer throws (ConfigError when redis-server is not
// installed, IoError, StoreUnavailable), InvalidArgument for options out of
// range, and Timeout (saying what it saw last) when the topology does not
// settle within startup_timeout. The destructor kills every process and
// removes their directories; a constructor that throws half-way kills those
// it had started.
//
// Thread safety: not safe for concurrent use; drive a topology from one
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

struct SentinelTopologyOptions {
  // The name the sentinels monitor the master under. Default: "prodsafe".
  std::string master_name = "prodsafe";
  // Replicas of the master: 1 or 2. Default: 2.
  int replicas = 2;
  // Sentinels: 1 to 7. Default: 3.
  int sentinels = 3;
  // How many sentinels must agree the master is down (`sentinel monitor ...
  // <quorum>`): 1 to sentinels. Default: 0, a majority of the sentinels.
  int quorum = 0;
  // `sentinel down-after-milliseconds`: a master silent this long is down.
  // At least 100 ms. Default: 1000 ms.
  std::chrono::milliseconds down_after{1000};
  // `sentinel failover-timeout`. At least 1000 ms. Default: 3000 ms.
  std::chrono::milliseconds failover_timeout{3000};
  // `requirepass` (and `masterauth`) of the data nodes; the sentinels get it
  // as `sentinel auth-pass`. Default: empty, no password.
  std::string password{};
  // `requirepass` of the sentinels (they also use it with each other).
  // Default: empty, no password.
  std::string sentinel_password{};
  // Extra redis.conf lines for the data nodes (e.g. "appendonly yes"),
  // written after the topology's. Default: none.
  std::vector<std::string> config{};
  // Shorten Sentinel's internal periods with SENTINEL DEBUG (INFO to each
  // node every 1 s instead of 10 s, hello messages every 500 ms instead of
  // 2 s, PING every 250 ms instead of 1 s, TILT lasting 5 s instead of 30 s),
  // so that discovery and the reconfiguration of a returning old master take
  // seconds. Failure detection still follows down_after. Without them, a
  // down_after of 1 s equals the PING period, and a just-promoted master that
  // misses one PING was seen failed over again at once (a second, spurious
  // failover). A sentinel restarted by hand loses them. Default: true.
  bool quick_timers = true;
  // How long the constructor waits for the replicas to sync and the
  // sentinels to discover each other. Default: 30 s.
  std::chrono::milliseconds startup_timeout{30000};
  // The redis-server executable (sentinels run it with --sentinel).
  // Default: redis-server from PATH.
  std::string executable = "redis-server";
  // Keep the directories after destruction, for debugging. Default: false.
  bool keep_directories = false;
};

class SentinelTopology {
 public:
  explicit SentinelTopology(SentinelTopologyOptions options = {});
  ~SentinelTopology();
  SentinelTopology(const SentinelTopology&) = delete;
  SentinelTopology& operator=(const SentinelTopology&) = delete;

  [[nodiscard]] const SentinelTopologyOptions& options() const noexcept { return options_; }
  [[nodiscard]] const std::string& master_name() const noexcept { return options_.master_name; }

  // "127.0.0.1:<port>" of each sentinel, in start order.
  [[nodiscard]] std::vector<std::string> sentinel_endpoints() const;
  // redis-sentinel://[:<password>@]127.0.0.1:<p1>,127.0.0.1:<p2>,...
  // /0?master=<master_name>: the credentials are the data nodes' (as
  // redis::Client reads such a URL); a client passes sentinel_password as
  // redis::Options::sentinel.password.
  [[nodiscard]] std::string url() const;
  // redis://[:<password>@]127.0.0.1:<port> of a data node.
  [[nodiscard]] std::string node_url(const RedisServer& node) const;

  // The data nodes: node(0) is the first master, the others its replicas.
  [[nodiscard]] std::size_t node_count() const noexcept { return nodes_.size(); }
  [[nodiscard]] RedisServer& node(std::size_t index);
  // The data node listening on `port`, or nullptr.
  [[nodiscard]] RedisServer* node_on_port(int port) noexcept;
  [[nodiscard]] std::size_t sentinel_count() const noexcept { return sentinels_.size(); }
  [[nodiscard]] RedisServer& sentinel(std::size_t index);

  // The master's port as the first sentinel that answers names it
  // (SENTINEL get-master-addr-by-name). Throws StoreUnavailable when no
  // sentinel answers, naming each one's failure.
  [[nodiscard]] int master_port() const;
  // The data node at master_port(). Throws as master_port(), and
  // ProtocolError when the sentinels name a port that is not a data node.
  [[nodiscard]] RedisServer& master();

  // Waits until every running, unpaused sentinel names the same master,
  // other than `old_master`, and that node answers INFO with role:master.
  // Returns it. Throws Timeout saying what the sentinels and the node said.
  RedisServer& wait_for_failover(const RedisServer& old_master, std::chrono::milliseconds timeout);
  // Waits until `node` is a replica of `master` with its link up (INFO
  // replication) and every running, unpaused sentinel names `master` and
  // lists `node` as its healthy replica (flags exactly "slave"): how a killed
  // or paused old master is seen back in service. Throws Timeout.
  void wait_until_replica_of(const RedisServer& node, const RedisServer& master,
                             std::chrono::milliseconds timeout);
  // Waits until the topology is whole again: every sentinel runs and names
  // the same master, which says role:master; every other data node is its
  // replica with the link up; every sentinel lists them all as healthy
  // replicas and sees every other sentinel. What the constructor waits for.
  // Throws Timeout.
  void wait_until_settled(std::chrono::milliseconds timeout);

 private:
  [[nodiscard]] std::vector<std::string> data_node_config() const;
  void start_sentinels();
  // A description of what is wrong with the topology, or empty when it is
  // settled.
  [[nodiscard]] std::string unsettled() const;
  // Empty when every running sentinel names `master`, else what one named.
  [[nodiscard]] std::string sentinels_disagree(int master_port) const;
  [[nodiscard]] std::string replica_problem(const RedisServer& node, int master_port) const;

  SentinelTopologyOptions options_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::vector<std::unique_ptr<RedisServer>> sentinels_;
};

}  // namespace prodsafe::embedded
