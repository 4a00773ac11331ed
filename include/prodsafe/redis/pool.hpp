// A fixed-size pool of connections to one Redis server: the URL's, or for a
// redis-sentinel:// URL the master the sentinels name, found anew for every
// connection the pool opens (see client.hpp).
//
// checkout() hands out an idle connection, opens a new one while fewer than
// pool_size exist, or waits up to pool_checkout_timeout for one to come back
// (then throws prodsafe::Timeout). A connection that broke while leased, or
// that the server closed while idle, is dropped and replaced on a later
// checkout. Failed connects back off (Options::reconnect_backoff_*). A
// READONLY reply (a failover behind this address) drops the connection that
// got it, every idle one, and every one leased at the time when it comes
// back: later checkouts connect anew.
//
// fork(): the child of a process that used the pool never uses the parent's
// connections. Its first checkout drops them (closing its copies of their
// sockets, writing nothing) and opens its own; a lease inherited from the
// parent is dropped when it is returned. Fork while no other thread is
// inside the pool (as POSIX requires for any lock a child goes on to use).
//
// Thread safety: safe for concurrent use; the pool must outlive its leases.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "prodsafe/core/backoff.hpp"
#include "prodsafe/redis/connection.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/options.hpp"

namespace prodsafe::redis {

namespace detail {
class SentinelResolver;
}

struct PoolStats {
  std::size_t open = 0;       // connections that exist, idle or leased
  std::size_t idle = 0;       // connections waiting in the pool
  std::uint64_t created = 0;  // connections opened since the pool was made
  std::uint64_t dropped = 0;  // broken or closed connections thrown away
  std::uint64_t connect_failures = 0;
  std::uint64_t checkout_timeouts = 0;
};

class ConnectionPool {
 public:
  // A leased connection; returns to the pool (or is dropped when broken) on
  // destruction.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease();

    Connection& operator*() const noexcept { return *connection_; }
    Connection* operator->() const noexcept { return connection_.get(); }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> connection,
          std::uint64_t generation) noexcept;

    ConnectionPool* pool_;
    std::unique_ptr<Connection> connection_;
    std::uint64_t generation_;  // the pool's generation when it was leased
  };

  // Throws InvalidArgument when an option is out of range (validate_options)
  // or `endpoint` is a cluster (redis::Client routes a cluster's commands).
  // Opens no connection.
  ConnectionPool(Endpoint endpoint, Options options);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Throws Timeout when every connection stays busy past the checkout
  // timeout, StoreUnavailable (or Timeout) when a new connection cannot be
  // opened, ReplyError when AUTH or SELECT is refused.
  [[nodiscard]] Lease checkout();

  // A new connection of the caller's own, never pooled, to where the pool's
  // connections go (for a sentinel endpoint, the current master). Throws
  // what checkout() throws when it opens a connection.
  [[nodiscard]] std::unique_ptr<Connection> connect() const;

  // Drops every idle connection now and every leased one when it comes back,
  // so that later checkouts connect anew (after a failover: a +switch-master
  // announcement, a READONLY reply).
  void drop_connections() noexcept;

  [[nodiscard]] PoolStats stats() const;
  [[nodiscard]] const Endpoint& endpoint() const noexcept { return endpoint_; }
  [[nodiscard]] const Options& options() const noexcept { return options_; }

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;

  std::unique_ptr<Connection> open_connection(SteadyTime deadline, bool has_deadline);
  void give_back(std::unique_ptr<Connection> connection, std::uint64_t generation) noexcept;
  // In a child of fork(): forgets the parent's connections. Called with
  // mutex_ held.
  void forget_parents_connections() noexcept;

  const Endpoint endpoint_;
  const Options options_;
  const std::string redacted_;

  // Guards every field below; checkout() waits on returned_ for a
  // connection to come back or a slot to free.
  mutable std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_ = 0;  // idle + leased + being opened, of this process
  pid_t pid_;             // the process whose connections open_ counts
  // Bumped by a failover (a READONLY reply): a connection leased in an
  // earlier generation is dropped when it comes back.
  std::uint64_t generation_ = 0;
  PoolStats stats_;
  SteadyTime next_connect_{};
  // The reconnect waits: reconnect_backoff_initial doubling up to
  // reconnect_backoff_max; empty when reconnect_backoff_initial is 0.
  std::optional<Backoff> reconnect_backoff_;
  int failed_connects_ = 0;  // in a row
  std::chrono::milliseconds backoff_{0};
  std::string last_connect_error_;
  // For a sentinel endpoint; last, so that its watcher thread (which calls
  // drop_connections()) stops before the fields above are destroyed.
  std::unique_ptr<detail::SentinelResolver> resolver_;
};

}  // namespace prodsafe::redis
