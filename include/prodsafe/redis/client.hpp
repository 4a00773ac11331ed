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

class Client {
 public:
  // Parses `url` (see endpoint.hpp); throws InvalidArgument when it is
  // malformed or an option is out of range (validate_options). Opens no
  // connection until the first command.
  explicit Client(std::string_view url, Options options = {});
  Client(Endpoint endpoint, Options options);
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

  // Runs the pipeline on one connection: one write, then one reply per command
  // in order. Error replies are returned in place (Reply::is_error()), not thrown.
  // A pipeline may hold whole transactions (WATCH, MULTI ... EXEC or DISCARD);
  // one that leaves its connection changed (Pipeline::changes_connection_state():
  // a MULTI or WATCH left open, SELECT, SUBSCRIBE, ...) throws InvalidArgument
  // before anything is sent.
  std::vector<Reply> pipeline(const Pipeline& pipeline);

  // A connection of the caller's own, opened now to endpoint() with options()
  // (so in the URL's database, as the URL's user) and never pooled: for what
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

  [[nodiscard]] ConnectionPool& pool() noexcept { return pool_; }
  [[nodiscard]] const Endpoint& endpoint() const noexcept { return pool_.endpoint(); }
  [[nodiscard]] const Options& options() const noexcept { return pool_.options(); }

 private:
  ConnectionPool pool_;
};

}  // namespace prodsafe::redis
