// The router behind a redis-cluster:// Client: a pool per node, the slot map,
// and the redirects (see "Redis Cluster" in client.hpp for the behaviour).
//
// Thread safety: safe for concurrent use.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cluster_topology.hpp"
#include "prodsafe/redis/connection.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/options.hpp"
#include "prodsafe/redis/pipeline.hpp"
#include "prodsafe/redis/pool.hpp"
#include "prodsafe/redis/reply.hpp"
#include "prodsafe/redis/slot.hpp"

namespace prodsafe::redis::detail {

class ClusterRouter {
 public:
  // Refreshes the slot map at most this often (MOVED, unreachable nodes).
  static constexpr std::chrono::milliseconds kMinRefreshInterval{100};
  // And at least this often, on the first command after it has passed.
  static constexpr std::chrono::seconds kRefreshEvery{30};
  // Redirects (MOVED, ASK) followed for one command.
  static constexpr int kMaxRedirects = 5;
  // How long TRYAGAIN, CLUSTERDOWN and LOADING are retried when there is no
  // command_timeout (0: no limit on a reply, but retries must end).
  static constexpr std::chrono::milliseconds kUnboundedRetryWindow{2000};

  // `endpoint` is a redis-cluster:// endpoint; its servers are the seeds.
  // Connects to nothing.
  ClusterRouter(Endpoint endpoint, Options options);
  ~ClusterRouter();
  ClusterRouter(const ClusterRouter&) = delete;
  ClusterRouter& operator=(const ClusterRouter&) = delete;

  // The reply from the master that owns the command's slot (errors as
  // replies, after the redirects and retries). Throws InvalidArgument when
  // the keys span slots, StoreUnavailable or Timeout as a pool does.
  Reply command(std::span<const std::string_view> args);
  std::vector<Reply> pipeline(const Pipeline& pipeline);
  // A new connection to one master.
  std::unique_ptr<Connection> connect();
  [[nodiscard]] PoolStats stats() const;

  // The master that owns `slot` now ("host:port"), fetching the map first if
  // there is none: for tests and `prodsafe check`.
  [[nodiscard]] std::string owner_of(int slot);

 private:
  // Where each slot goes. Built by a refresh; a MOVED reply patches one slot.
  struct Routes {
    std::array<std::atomic<ConnectionPool*>, kClusterSlots> owner{};
    std::vector<ConnectionPool*> masters;
    std::chrono::steady_clock::time_point fetched{};
  };

  // The slot of a command's keys; nullopt when it has none. Throws
  // InvalidArgument when they span slots.
  std::optional<int> slot_of(std::span<const std::string_view> args);
  std::shared_ptr<Routes> routes();
  ConnectionPool* route(const std::optional<int>& slot);
  ConnectionPool& pool_for(const HostPort& node);
  // Sends `group` (a command with keys, then commands without) again where
  // `redirect` (parsed from `redirected`, its MOVED or ASK reply from `from`)
  // says, following up to kMaxRedirects within command_timeout; the group's
  // replies (a redirect that does not parse among them, in place).
  std::vector<Reply> follow(std::span<const std::vector<std::string_view>> group, Redirect redirect,
                            Reply redirected, ConnectionPool* from);
  // Fetches the slot map; with `must` (no map yet) throws StoreUnavailable
  // when no node answers, else only logs. One at a time; at most one per
  // kMinRefreshInterval unless `must`.
  void refresh(bool must);

  const Endpoint endpoint_;
  const Options options_;
  const std::string redacted_;

  mutable std::mutex mutex_;                                      // guards pools_ and routes_
  std::map<std::string, std::unique_ptr<ConnectionPool>> pools_;  // by "host:port"; never erased
  std::shared_ptr<Routes> routes_;
  std::mutex refresh_mutex_;  // held by the one refresh under way
  std::chrono::steady_clock::time_point last_refresh_{};
};

}  // namespace prodsafe::redis::detail
