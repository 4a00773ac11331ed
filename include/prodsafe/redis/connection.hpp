// One connection to a Redis server, on a socket prodsafe owns (TCP or unix;
// hiredis only parses the replies). Most code uses Client, which hands out
// pooled connections; Connection is for code that needs one connection of
// its own (a subscriber, a health probe, a MULTI/EXEC transaction).
//
// Deadlines: the connect, AUTH and SELECT together end within
// connect_timeout; each command, pipeline or SUBSCRIBE within
// command_timeout of its start, however the server sends its reply and
// whatever signals interrupt the waits. Host name resolution (getaddrinfo)
// is not bounded by connect_timeout.
//
// After an I/O or protocol error, a timeout, or any exception while a reply
// is being read (its later bytes would be read by the next caller), the
// connection is broken() and every later call throws StoreUnavailable; open
// a new one (the pool does so itself). A READONLY reply (the server is a
// replica now: a failover happened behind this address) breaks it too, after
// it is returned to the caller.
//
// fork(): a connection belongs to the process that opened it. In a child it
// throws StoreUnavailable on every call, without writing to the socket, so
// parent and child never read each other's replies; destroying it closes
// the child's copy of the socket and writes nothing. No SIGPIPE is raised,
// and no signal disposition is changed.
//
// Thread safety: not safe for concurrent use; one thread at a time.
#pragma once

#include <chrono>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/options.hpp"
#include "prodsafe/redis/pipeline.hpp"
#include "prodsafe/redis/reply.hpp"

#include <sys/types.h>

struct redisReader;

namespace prodsafe::redis {

namespace detail {
class Transport;
}

class Connection {
 public:
  // Connects within options.connect_timeout, then sends AUTH (when the endpoint
  // or options carry a password) and SELECT (when db != 0). Throws
  // InvalidArgument when an option is out of range (validate_options),
  // StoreUnavailable or Timeout when the server cannot be reached, ReplyError
  // when AUTH or SELECT is refused.
  Connection(const Endpoint& endpoint, const Options& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends one command and returns its reply; an error reply is returned as a
  // Reply of type kError (call check() to throw it). Throws StoreUnavailable
  // on I/O errors and Timeout when no reply comes within the command timeout.
  Reply command(std::initializer_list<std::string_view> args);
  Reply command(std::span<const std::string_view> args);
  Reply command(const std::vector<std::string>& args);

  // Writes every command of `pipeline` at once and reads one reply each.
  std::vector<Reply> pipeline(const Pipeline& pipeline);

  // Pub/sub: subscribes to `channels` (reading each confirmation). The
  // connection then only receives messages: use next_message(). Throws
  // InvalidArgument when `channels` is empty.
  void subscribe(std::span<const std::string_view> channels);
  // The next pushed message (["message", channel, payload]): one already
  // read with an earlier message at once, else one that arrives within
  // `timeout` (at most kMaxOptionDuration); nullopt when none did. Throws
  // like command().
  std::optional<Reply> next_message(std::chrono::milliseconds timeout);

  // True after an error that left the connection unusable.
  [[nodiscard]] bool broken() const noexcept;
  // Makes broken() true: for a caller that knows the connection is no longer
  // in the state it was opened in. A pool drops it when it is returned.
  void mark_broken() noexcept { broken_ = true; }
  // A cheap check (no round trip) that the server has not closed the
  // connection, nothing unexpected is waiting to be read (on the socket or
  // already read and not yet parsed), and this process opened it.
  [[nodiscard]] bool looks_alive() const noexcept;
  // True after a READONLY reply: the server behind this address is no
  // longer a primary, so other connections to it are stale too.
  [[nodiscard]] bool saw_failover() const noexcept { return saw_failover_; }
  // The process that opened the connection (see fork() above).
  [[nodiscard]] pid_t owner() const noexcept { return owner_; }
  [[nodiscard]] const Endpoint& endpoint() const noexcept { return endpoint_; }

 private:
  using Deadline = std::chrono::steady_clock::time_point;

  void connect(const Options& options);
  // Throws StoreUnavailable when the connection is broken or inherited.
  void check_usable(std::string_view what);
  void send(std::string_view encoded, std::string_view what, Deadline deadline);
  Reply read_reply(std::string_view what, Deadline deadline);
  // The next reply the parser holds, if any.
  std::optional<Reply> parsed_reply(std::string_view what);
  // Reads what the socket has (waiting until `deadline`) into the parser.
  // At the deadline: false when `may_time_out`, else throws Timeout.
  bool fill(std::string_view what, Deadline deadline, bool may_time_out);
  // Turns a transport or parser failure into prodsafe's error classes.
  [[noreturn]] void fail(std::string_view what, const std::exception& error);

  Endpoint endpoint_;
  std::string redacted_;
  pid_t owner_ = 0;
  std::chrono::milliseconds connect_timeout_{0};
  std::chrono::milliseconds command_timeout_{0};
  bool connecting_ = true;  // until AUTH and SELECT are done: which timeout applies
  struct ReaderDeleter {
    void operator()(redisReader* reader) const noexcept;
  };
  std::unique_ptr<redisReader, ReaderDeleter> reader_;
  std::unique_ptr<detail::Transport> transport_;
  bool tls_ = false;
  bool answered_ = false;  // a reply has arrived
  bool broken_ = false;
  bool saw_failover_ = false;
};

}  // namespace prodsafe::redis
