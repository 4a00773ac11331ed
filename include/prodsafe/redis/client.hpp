// The Redis client prodsafe's modules use: a connection pool plus commands
// with typed replies, pipelines and Lua scripts.
//
//   prodsafe::redis::Client redis("redis://:secret@127.0.0.1:6379/0",
//                                 {.command_timeout = std::chrono::milliseconds(200)});
//   redis.set(redis.key("greeting"), "hello");
//   std::optional<std::string> value = redis.get(redis.key("greeting"));
//
// Every call checks a connection out of the pool for its duration. Errors:
// StoreUnavailable (I/O), Timeout (no reply in time, or no free connection),
// ReplyError (the server refused the command), ProtocolError (a reply of an
// unexpected type). No message contains the password.
//
// Pooled connections are shared, one caller after another, so a Client never
// sends a command that would leave one changed for the next caller (MULTI,
// WATCH, SELECT, SUBSCRIBE, CLIENT REPLY, AUTH, HELLO, RESET, MONITOR, ...;
// the list and the reasons are in connection_state.hpp): command() refuses
// them with InvalidArgument naming what to use instead. A transaction runs as
// one pipeline (MULTI ... EXEC); the database and credentials come from the
// URL; everything else runs on dedicated_connection().
//
// Topologies: the URL says which (endpoint.hpp).
// - One server (redis://, rediss://, unix://): one pool.
// - Sentinel (redis-sentinel://...?master=NAME): one pool, whose every new
//   connection asks the sentinels in turn (each within
//   Options::sentinel.timeout; the one that answered is asked first next
//   time) for the master's address and checks with ROLE that the node is a
//   master. A READONLY reply, an I/O error or a timeout drops a connection,
//   so the next one finds the new master after a failover; a +switch-master
//   announcement (Options::sentinel.watch_switch) drops them all at once.
//   Errors say what failed: no sentinel reachable (StoreUnavailable), no
//   master of that name (ConfigError), the named node unreachable or not a
//   master (StoreUnavailable: a failover under way).
// - Cluster (redis-cluster://seed1,seed2...): a pool per master, and each
//   command goes to the master that owns its keys' hash slot (slot.hpp). See
//   "Redis Cluster" below.
//
// Scripts are not replicated: after a failover the new master's script cache
// is empty, and redis::Script reloads a script once, transparently.
//
// Redis Cluster. The slot map comes from CLUSTER SHARDS (CLUSTER SLOTS on
// servers before 7.0), asked of the known masters and then the URL's seeds; it
// is fetched before the first command, again on a MOVED reply, an unreachable
// node or a slot it gives no master (a map fetched during a failover; one
// refresh at a time, at most one per 100 ms), and every 30 s. A MOVED reply is
// followed to the node it names, an ASK reply with ASKING there; TRYAGAIN,
// CLUSTERDOWN and LOADING are retried with a short backoff while the command's
// deadline (command_timeout; 2 s when it is 0) allows, after which the server's
// error is thrown; at most 5 redirects per command, and none once
// command_timeout has passed (Timeout). A command's keys must share one slot:
// one whose keys span slots throws InvalidArgument before anything is sent (put
// a hash tag, {...}, in the keys). A command without keys (PING, INFO, TIME)
// goes to one master. A pipeline is split per node and its replies are put back
// in order: a command without keys goes with the command before it (so
// [EVALSHA ... key, WAIT 1 100] runs on one connection), and a MULTI ... EXEC
// block goes whole to the node of its keys. A pipelined command that met MOVED or ASK (so
// did not run) is sent again where the redirect says, with the commands without
// keys that went with it (their first replies, from the old node, are replaced:
// a WAIT waits on the node that ran the write); a MULTI block that met one
// (EXEC then fails with EXECABORT) is sent again whole, after ASK to the node
// it names, with ASKING. A redirect reply that does not parse is returned in
// place, like any error reply.
//
// Thread safety: safe for concurrent use from any number of threads.
#pragma once

#include <chrono>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "prodsafe/redis/connection.hpp"
#include "prodsafe/redis/connection_state.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/options.hpp"
#include "prodsafe/redis/pipeline.hpp"
#include "prodsafe/redis/pool.hpp"
#include "prodsafe/redis/reply.hpp"

namespace prodsafe::redis {

namespace detail {
class ClusterRouter;
}

class Client {
 public:
  // Parses `url` (see endpoint.hpp); throws InvalidArgument when it is
  // malformed or an option is out of range (validate_options). Opens no
  // connection until the first command.
  explicit Client(std::string_view url, Options options = {});
  Client(Endpoint endpoint, Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Any command that leaves its connection as it found it; an error reply
  // throws ReplyError. A command that would change the connection for later
  // callers (classify_command() says anything but kNone or kUnwatch; names
  // match in any case, CLIENT REPLY on both words) throws InvalidArgument
  // before anything is sent, its message naming the command and what to use
  // instead. The check is a switch on the name's length: no allocation.
  Reply command(std::initializer_list<std::string_view> args);
  Reply command(std::span<const std::string_view> args);
  Reply command(const std::vector<std::string>& args);

  // Like command(), but an error reply is returned (Reply::is_error()), not
  // thrown; for callers that act on the server's error, such as NOSCRIPT.
  Reply execute(std::span<const std::string_view> args);

  // Runs the pipeline on one connection: one write, then one reply per command
  // in order. Error replies are returned in place (Reply::is_error()), not thrown.
  // A pipeline may hold whole transactions (WATCH, MULTI ... EXEC or DISCARD);
  // one that leaves its connection changed (Pipeline::changes_connection_state():
  // a MULTI or WATCH left open, SELECT, SUBSCRIBE, ...) throws InvalidArgument
  // before anything is sent.
  std::vector<Reply> pipeline(const Pipeline& pipeline);

  // A connection of the caller's own, opened now with options() (so in the
  // URL's database, as the URL's user) to the server, the master the
  // sentinels name, or one master of a cluster, and never pooled: for what
  // command() refuses, such as WATCH ... MULTI ... EXEC with reads in between,
  // Connection::subscribe(), MONITOR. Closed when the caller destroys it; like
  // any Connection, one thread at a time. Throws what opening a pooled
  // connection throws (StoreUnavailable, Timeout, ReplyError for AUTH/SELECT).
  [[nodiscard]] std::unique_ptr<Connection> dedicated_connection() const;

  // Typed helpers for the commands prodsafe itself uses.
  std::string ping();
  std::optional<std::string> get(std::string_view key);
  // SET key value [PX ttl]; a ttl of zero sets no expiry.
  void set(std::string_view key, std::string_view value,
           std::chrono::milliseconds ttl = std::chrono::milliseconds(0));
  long long del(std::string_view key);
  long long incr(std::string_view key);
  // INFO [section], as the raw text the server sends.
  std::string info(std::string_view section = {});
  // The server's clock (TIME), as microseconds since the Unix epoch.
  long long server_time_us();

  // options().key_prefix + name: the key under which modules store `name`.
  [[nodiscard]] std::string key(std::string_view name) const;

  // The pool of a one-server or sentinel client. Throws InvalidArgument for
  // a cluster, which has a pool per node (see stats()).
  [[nodiscard]] ConnectionPool& pool();
  // The pools' statistics, summed over a cluster's nodes.
  [[nodiscard]] PoolStats stats() const;
  [[nodiscard]] const Endpoint& endpoint() const noexcept { return endpoint_; }
  [[nodiscard]] const Options& options() const noexcept { return options_; }

 private:
  const Endpoint endpoint_;
  const Options options_;
  // One of the two: a pool (one server, or the master the sentinels name),
  // or the cluster's router.
  std::unique_ptr<ConnectionPool> pool_;
  std::unique_ptr<detail::ClusterRouter> cluster_;
};

}  // namespace prodsafe::redis
