// Finding the master through Redis Sentinel, as Redis's guide for sentinel
// clients describes: ask the sentinels in turn, each within
// SentinelOptions::timeout (the one that answered moves to the front), for
// SENTINEL get-master-addr-by-name; connect to the address it names and
// check with ROLE that it is a master. Every new connection resolves anew,
// so a pool that dropped its connections (READONLY, an I/O error, a
// timeout) reaches the new master after a failover.
//
// With SentinelOptions::watch_switch, a background thread also subscribes to
// +switch-master on one sentinel and calls the given function when this
// master moves, so the pool can drop its connections before a caller meets
// the old master.
//
// Thread safety: safe for concurrent use. fork(): the child neither uses nor
// joins the parent's watcher; call watch() again in the child.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include "prodsafe/redis/connection.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/options.hpp"

namespace prodsafe::redis::detail {

class SentinelResolver {
 public:
  // `endpoint` is a redis-sentinel:// endpoint (servers are the sentinels).
  SentinelResolver(Endpoint endpoint, Options options);
  ~SentinelResolver();
  SentinelResolver(const SentinelResolver&) = delete;
  SentinelResolver& operator=(const SentinelResolver&) = delete;

  // A new connection to the current master, opened within connect_timeout
  // (asking the sentinels included). Throws
  // - ConfigError when every sentinel that answered knows no master of that
  //   name;
  // - StoreUnavailable when no sentinel could be reached, or the node they
  //   name cannot be reached or is not a master (a failover under way); the
  //   message says which, for each sentinel asked;
  // - ReplyError when the master refuses AUTH or SELECT.
  [[nodiscard]] std::unique_ptr<Connection> open_master() const;

  // Starts the +switch-master watcher (once per process; a no-op when
  // SentinelOptions::watch_switch is off). `on_switch` runs on the watcher's
  // thread; it must not throw.
  void watch(std::function<void()> on_switch);

  // The master the last resolution found ("host:port"), for messages.
  [[nodiscard]] std::string last_master() const;

 private:
  [[nodiscard]] Endpoint sentinel_endpoint(const HostPort& sentinel) const;
  // options_ with the sentinels' credentials and `timeout` for connect and reply.
  [[nodiscard]] Options sentinel_options(std::chrono::milliseconds timeout) const;
  void watch_loop(std::function<void()> on_switch);

  const Endpoint endpoint_;
  const Options options_;
  const std::string redacted_;

  mutable std::mutex mutex_;
  // The sentinels in the order to ask them; the last one that answered first.
  mutable std::vector<HostPort> order_;
  mutable std::string last_master_;

  std::atomic<bool> stopping_{false};
  // Heap-allocated so that a child of fork() can leave it alone: the thread
  // does not exist there, and joining or detaching it would be undefined.
  std::unique_ptr<std::thread> watcher_;
  pid_t watcher_pid_ = 0;
};

}  // namespace prodsafe::redis::detail
