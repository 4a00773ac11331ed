// One connection to a Redis server, over hiredis (blocking, with timeouts).
// Most code uses Client, which hands out pooled connections; Connection is for
// code that needs one connection of its own (a subscriber, a health probe).
//
// After an I/O or protocol error the connection is broken() and every later
// call throws StoreUnavailable; open a new one (the pool does so itself).
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

struct redisContext;

namespace prodsafe::redis {

class Connection {
 public:
  // Connects within options.connect_timeout, then sends AUTH (when the endpoint
  // or options carry a password) and SELECT (when db != 0). Throws
  // InvalidArgument when an option is out of range (validate_options),
  // StoreUnavailable or Timeout when the server cannot be reached, ReplyError
  // when AUTH or SELECT is refused.
  Connection(const Endpoint& endpoint, const Options& options);
  ~Connection() = default;
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
  // connection then only receives messages: use next_message().
  void subscribe(std::span<const std::string_view> channels);
  // The next pushed message (["message", channel, payload]): one already
  // read with an earlier message at once, else one that arrives within
  // `timeout`; nullopt when none did. Throws like command().
  std::optional<Reply> next_message(std::chrono::milliseconds timeout);

  // True after an error that left the connection unusable.
  [[nodiscard]] bool broken() const noexcept;
  // A cheap check (no round trip) that the server has not closed the
  // connection and nothing unexpected is waiting to be read.
  [[nodiscard]] bool looks_alive() const noexcept;
  [[nodiscard]] const Endpoint& endpoint() const noexcept { return endpoint_; }

 private:
  void connect(const Options& options);
  void send(std::string_view encoded, std::string_view what);
  Reply read_reply(std::string_view what);
  [[noreturn]] void fail(std::string_view what);

  Endpoint endpoint_;
  std::string redacted_;
  long long timeout_ms_ = 0;
  const char* timeout_option_ = "connect_timeout";
  struct ContextDeleter {
    void operator()(redisContext* context) const noexcept;
  };
  std::unique_ptr<redisContext, ContextDeleter> context_;
  bool broken_ = false;
};

}  // namespace prodsafe::redis
