#include "prodsafe/redis/pool.hpp"

#include <unistd.h>

#include <algorithm>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "sentinel.hpp"

namespace prodsafe::redis {

ConnectionPool::Lease::Lease(ConnectionPool* pool, std::unique_ptr<Connection> connection,
                             std::uint64_t generation) noexcept
    : pool_(pool), connection_(std::move(connection)), generation_(generation) {}

ConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_),
      connection_(std::move(other.connection_)),
      generation_(other.generation_) {}

ConnectionPool::Lease::~Lease() {
  if (connection_) pool_->give_back(std::move(connection_), generation_);
}

ConnectionPool::ConnectionPool(Endpoint endpoint, Options options)
    : endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      redacted_(endpoint_.redacted()),
      pid_(::getpid()) {
  validate_options(options_);
  validate_tls_endpoint(endpoint_, options_.tls);
  if (endpoint_.topology == Endpoint::Topology::kCluster) {
    throw InvalidArgument(
        fmt::format("a ConnectionPool holds connections to one server, and {} is a cluster; use "
                    "redis::Client, which keeps a pool for each node",
                    redacted_));
  }
  if (endpoint_.topology == Endpoint::Topology::kSentinel) {
    resolver_ = std::make_unique<detail::SentinelResolver>(endpoint_, options_);
  }
  idle_.reserve(options_.pool_size);
  if (options_.reconnect_backoff_initial.count() > 0) {
    // No jitter: Options promises these exact waits.
    reconnect_backoff_.emplace(
        Jitter::kNone, options_.reconnect_backoff_initial,
        std::max(options_.reconnect_backoff_initial, options_.reconnect_backoff_max), 1);
  }
}

ConnectionPool::~ConnectionPool() = default;

std::unique_ptr<Connection> ConnectionPool::connect() const {
  if (resolver_) return resolver_->open_master();
  return std::make_unique<Connection>(endpoint_, options_);
}

void ConnectionPool::drop_connections() noexcept {
  bool dropped = false;
  {
    std::lock_guard lock(mutex_);
    if (::getpid() != pid_) return;  // a child's first checkout forgets them all
    ++generation_;
    open_ -= idle_.size();
    stats_.dropped += idle_.size();
    dropped = !idle_.empty();
    idle_.clear();
  }
  if (dropped) returned_.notify_all();
}

ConnectionPool::Lease ConnectionPool::checkout() {
  const bool has_deadline = options_.pool_checkout_timeout.count() > 0;
  const SteadyTime deadline = std::chrono::steady_clock::now() + options_.pool_checkout_timeout;
  std::unique_lock lock(mutex_);
  if (::getpid() != pid_) forget_parents_connections();
  for (;;) {
    const std::uint64_t generation = generation_;
    if (!idle_.empty()) {
      std::unique_ptr<Connection> connection = std::move(idle_.back());
      idle_.pop_back();
      lock.unlock();
      if (connection->looks_alive()) return Lease(this, std::move(connection), generation);
      connection.reset();  // the server closed it while it sat idle
      lock.lock();
      --open_;
      ++stats_.dropped;
      continue;
    }
    if (open_ < options_.pool_size) {
      ++open_;
      lock.unlock();
      try {
        return Lease(this, open_connection(deadline, has_deadline), generation);
      } catch (...) {
        lock.lock();
        --open_;
        lock.unlock();
        returned_.notify_one();
        throw;
      }
    }
    if (!has_deadline) {
      returned_.wait(lock);
    } else if (returned_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
               open_ >= options_.pool_size) {
      ++stats_.checkout_timeouts;
      throw Timeout(fmt::format(
          "{}: all {} pooled connections stayed busy for {} ms (pool_checkout_timeout); raise "
          "pool_size or pool_checkout_timeout, or hold connections for less time",
          redacted_, options_.pool_size, options_.pool_checkout_timeout.count()));
    }
  }
}

std::unique_ptr<Connection> ConnectionPool::open_connection(SteadyTime deadline,
                                                            bool has_deadline) {
  {
    std::unique_lock lock(mutex_);
    const SteadyTime now = std::chrono::steady_clock::now();
    if (now < next_connect_) {
      if (has_deadline && next_connect_ > deadline) {
        const auto wait =
            std::chrono::duration_cast<std::chrono::milliseconds>(next_connect_ - now);
        throw StoreUnavailable(
            fmt::format("{} is unreachable (last connect: {}); next reconnect attempt in {} ms",
                        redacted_, last_connect_error_, wait.count()));
      }
      const SteadyTime wake = next_connect_;
      lock.unlock();
      std::this_thread::sleep_until(wake);
    }
  }
  if (resolver_) resolver_->watch([this] { drop_connections(); });
  try {
    auto connection = connect();
    std::lock_guard lock(mutex_);
    ++stats_.created;
    if (backoff_.count() > 0) {
      logger()->info("reconnected to {} after {} failed attempt(s)", redacted_,
                     stats_.connect_failures);
    }
    backoff_ = std::chrono::milliseconds(0);
    failed_connects_ = 0;
    next_connect_ = SteadyTime{};
    return connection;
  } catch (const Error& error) {
    std::lock_guard lock(mutex_);
    ++stats_.connect_failures;
    last_connect_error_ = error.what();
    if (reconnect_backoff_) {
      backoff_ = reconnect_backoff_->next(failed_connects_);
      // A max below the initial wait caps the waits after the first.
      if (failed_connects_ > 0) backoff_ = std::min(backoff_, options_.reconnect_backoff_max);
      failed_connects_ = std::min(failed_connects_ + 1, 62);  // the doubling is capped long before
    }
    next_connect_ = std::chrono::steady_clock::now() + backoff_;
    logger()->warn("{} (next attempt in {} ms)", last_connect_error_, backoff_.count());
    throw;
  }
}

void ConnectionPool::forget_parents_connections() noexcept {
  pid_ = ::getpid();
  open_ = 0;
  stats_ = PoolStats{};
  next_connect_ = SteadyTime{};
  failed_connects_ = 0;
  backoff_ = std::chrono::milliseconds(0);
  ++generation_;  // leases from the parent are dropped when they come back
  idle_.clear();  // closes the child's copies of the sockets; writes nothing
}

void ConnectionPool::give_back(std::unique_ptr<Connection> connection,
                               std::uint64_t generation) noexcept {
  bool freed_several = false;
  {
    std::lock_guard lock(mutex_);
    if (connection->owner() != pid_) {
      // Leased before a fork: not counted in this process's open_.
      connection.reset();
    } else if (connection->saw_failover() && generation == generation_) {
      // The server behind the address is a replica now: so is every idle
      // connection's, and every leased one's (generation_ drops those as
      // they come back). Closing them here allocates nothing.
      ++generation_;
      open_ -= idle_.size() + 1;
      stats_.dropped += idle_.size() + 1;
      freed_several = !idle_.empty();
      idle_.clear();
      connection.reset();
    } else if (connection->broken() || generation != generation_) {
      --open_;
      ++stats_.dropped;
      connection.reset();
    } else {
      idle_.push_back(std::move(connection));  // within the capacity reserved
    }
  }
  if (freed_several) {
    returned_.notify_all();
  } else {
    returned_.notify_one();
  }
}

PoolStats ConnectionPool::stats() const {
  std::lock_guard lock(mutex_);
  PoolStats stats = stats_;
  stats.open = open_;
  stats.idle = idle_.size();
  return stats;
}

}  // namespace prodsafe::redis
