#include "prodsafe/redis/connection.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <memory>
#include <new>
#include <string_view>

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include "plain_transport.hpp"
#include "prodsafe/core/error.hpp"
#include "socket.hpp"
#include "tls_transport.hpp"
#include "transport.hpp"

namespace prodsafe::redis {
namespace {

using detail::Deadline;
using detail::TransportError;

// Bytes read from the socket at a time.
constexpr std::size_t kReadChunk = 16 * 1024;

Reply convert(const redisReply* reply) {
  switch (reply->type) {
    case REDIS_REPLY_STRING:
      return Reply::string(std::string(reply->str, reply->len));
    case REDIS_REPLY_STATUS:
      return Reply::status(std::string(reply->str, reply->len));
    case REDIS_REPLY_ERROR:
      return Reply::error(std::string(reply->str, reply->len));
    case REDIS_REPLY_INTEGER:
      return Reply::integer(reply->integer);
    case REDIS_REPLY_ARRAY: {
      std::vector<Reply> elements;
      elements.reserve(reply->elements);
      for (std::size_t i = 0; i < reply->elements; ++i)
        elements.push_back(convert(reply->element[i]));
      return Reply::array(std::move(elements));
    }
    case REDIS_REPLY_NIL:
    default:
      return Reply::nil();
  }
}

std::string_view command_name(std::span<const std::string_view> args) {
  return args.empty() ? std::string_view("(empty command)") : args.front();
}

bool is_readonly(const Reply& reply) {
  if (!reply.is_error()) return false;
  const std::string_view message = reply.error_message();
  return message.substr(0, message.find(' ')) == "READONLY";
}

void check_duration(std::string_view name, std::chrono::milliseconds value,
                    std::string_view zero_means) {
  if (value.count() < 0 || value > kMaxOptionDuration) {
    throw InvalidArgument(fmt::format("redis::Options::{} must be between 0{} and 24 h, got {} ms",
                                      name, zero_means, value.count()));
  }
}

}  // namespace

void validate_options(const Options& options) {
  check_duration("connect_timeout", options.connect_timeout, " (the operating system's limit)");
  check_duration("command_timeout", options.command_timeout, " (wait forever)");
  check_duration("pool_checkout_timeout", options.pool_checkout_timeout, " (wait forever)");
  check_duration("reconnect_backoff_initial", options.reconnect_backoff_initial, " (no backoff)");
  check_duration("reconnect_backoff_max", options.reconnect_backoff_max, "");
  check_duration("sentinel.timeout", options.sentinel.timeout, "");
  if (options.sentinel.timeout.count() == 0) {
    throw InvalidArgument(
        "redis::Options::sentinel.timeout is 0; give each sentinel at least 1 ms to answer");
  }
  if (options.pool_size == 0) {
    throw InvalidArgument("redis::Options::pool_size is 0; a pool needs at least 1 connection");
  }
  validate_tls_options(options.tls);
}

Connection::Connection(const Endpoint& endpoint, const Options& options)
    : endpoint_(endpoint), redacted_(endpoint.redacted()), owner_(::getpid()) {
  validate_options(options);
  validate_tls_endpoint(endpoint, options.tls);
  if (endpoint.topology != Endpoint::Topology::kStandalone) {
    throw InvalidArgument(fmt::format(
        "redis::Connection connects to one server, and {} names {}; use redis::Client, which "
        "finds the server to talk to (Client::dedicated_connection() for a connection of your "
        "own)",
        redacted_, endpoint.topology == Endpoint::Topology::kSentinel ? "sentinels" : "a cluster"));
  }
  if (options.user) endpoint_.user = *options.user;
  if (options.password) endpoint_.password = *options.password;
  if (options.user || options.password) redacted_ = endpoint_.redacted();
  connect_timeout_ = options.connect_timeout;
  command_timeout_ = options.command_timeout;
  connect(options);
}

// Out of line: detail::Transport is complete only here.
Connection::~Connection() = default;

void Connection::ReaderDeleter::operator()(redisReader* reader) const noexcept {
  redisReaderFree(reader);
}

void Connection::connect(const Options& options) {
  const bool tls = endpoint_.tls || options.tls.enabled;
  tls_ = tls;
  // One deadline for the connect, AUTH and SELECT together.
  const Deadline deadline = detail::deadline_after(options.connect_timeout);
  reader_.reset(redisReaderCreate());
  if (reader_ == nullptr) throw std::bad_alloc();
  try {
    detail::Socket socket = endpoint_.transport == Endpoint::Transport::kUnix
                                ? detail::connect_unix(endpoint_.socket_path, deadline)
                                : detail::connect_tcp(endpoint_.host, endpoint_.port, deadline);
    if (tls) {
      transport_ = std::make_unique<detail::TlsTransport>(std::move(socket), options.tls,
                                                          endpoint_.host, deadline);
    } else {
      transport_ = std::make_unique<detail::PlainTransport>(std::move(socket));
    }
  } catch (const TransportError& error) {
    fail("connect", error);
  } catch (...) {
    broken_ = true;
    throw;
  }

  const auto exchange = [&](std::initializer_list<std::string_view> args) {
    std::string encoded;
    encode_command(args, encoded);
    send(encoded, *args.begin(), deadline);
    return read_reply(*args.begin(), deadline);
  };
  if (!endpoint_.password.empty()) {
    const Reply reply = endpoint_.user.empty()
                            ? exchange({"AUTH", endpoint_.password})
                            : exchange({"AUTH", endpoint_.user, endpoint_.password});
    if (reply.is_error()) {
      broken_ = true;
      throw ReplyError(
          reply.error_message(),
          fmt::format("AUTH to {} refused; check the user name and password", redacted_));
    }
  }
  if (tls && endpoint_.password.empty()) {
    // Over TLS 1.3 a server that refuses this client's certificate says so
    // after the handshake: ask now, so that connect() reports it (this also
    // reads the session tickets, which would make an idle connection look
    // readable to looks_alive()).
    // An error reply (NOAUTH, LOADING) is for the first command to report.
    (void)exchange({"PING"});
  }
  if (endpoint_.db != 0) {
    const std::string db = std::to_string(endpoint_.db);
    const Reply reply = exchange({"SELECT", db});
    if (reply.is_error()) {
      broken_ = true;
      throw ReplyError(reply.error_message(),
                       fmt::format("SELECT {} on {} refused; the server may have fewer databases "
                                   "(see 'databases' in redis.conf)",
                                   db, redacted_));
    }
  }
  connecting_ = false;
}

Reply Connection::command(std::initializer_list<std::string_view> args) {
  return command(std::span<const std::string_view>(args.begin(), args.size()));
}

Reply Connection::command(const std::vector<std::string>& args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  return command(std::span<const std::string_view>(views));
}

Reply Connection::command(std::span<const std::string_view> args) {
  std::string encoded;
  encode_command(args, encoded);
  const std::string_view what = command_name(args);
  check_usable(what);
  const Deadline deadline = detail::deadline_after(command_timeout_);
  try {
    send(encoded, what, deadline);
    return read_reply(what, deadline);
  } catch (...) {
    broken_ = true;  // the reply, or part of it, may still be on its way
    throw;
  }
}

std::vector<Reply> Connection::pipeline(const Pipeline& pipeline) {
  std::vector<Reply> replies;
  if (pipeline.empty()) return replies;
  check_usable("pipeline");
  const Deadline deadline = detail::deadline_after(command_timeout_);
  try {
    replies.reserve(pipeline.size());
    send(pipeline.encoded(), "pipeline", deadline);
    for (std::size_t i = 0; i < pipeline.size(); ++i) {
      replies.push_back(read_reply("pipeline", deadline));
    }
  } catch (...) {
    broken_ = true;  // the later replies would go to the next caller
    throw;
  }
  return replies;
}

void Connection::check_usable(std::string_view what) {
  if (owner_ != ::getpid()) {
    broken_ = true;
    throw StoreUnavailable(fmt::format(
        "{}: {} on a connection that process {} opened before fork(); this process ({}) must "
        "open its own (a ConnectionPool does so itself)",
        redacted_, what, owner_, ::getpid()));
  }
  if (broken()) {
    throw StoreUnavailable(fmt::format(
        "{}: {} on a broken connection; take a new one from the pool", redacted_, what));
  }
}

void Connection::send(std::string_view encoded, std::string_view what, Deadline deadline) {
  try {
    transport_->write_all(encoded, deadline);
  } catch (const TransportError& error) {
    fail(what, error);
  }
}

std::optional<Reply> Connection::parsed_reply(std::string_view what) {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
    if (reader_->err == REDIS_ERR_OOM) throw std::bad_alloc();
    fail(what, ProtocolError(reader_->errstr));
  }
  if (raw == nullptr) return std::nullopt;
  const std::unique_ptr<redisReply, void (*)(void*)> reply(static_cast<redisReply*>(raw),
                                                           freeReplyObject);
  answered_ = true;
  Reply converted = convert(reply.get());
  if (is_readonly(converted)) {
    // The server is a replica now; the caller gets this reply, and the next
    // one a new connection (to whatever the address reaches now).
    saw_failover_ = true;
    broken_ = true;
  }
  return converted;
}

bool Connection::fill(std::string_view what, Deadline deadline, bool may_time_out) {
  std::array<char, kReadChunk> buffer;
  std::size_t got = 0;
  try {
    got = transport_->read_some(buffer, deadline);
  } catch (const TransportError& error) {
    if (may_time_out && error.kind() == TransportError::Kind::kTimeout) return false;
    fail(what, error);
  }
  if (redisReaderFeed(reader_.get(), buffer.data(), got) != REDIS_OK) throw std::bad_alloc();
  return true;
}

Reply Connection::read_reply(std::string_view what, Deadline deadline) {
  for (;;) {
    if (std::optional<Reply> reply = parsed_reply(what)) return std::move(*reply);
    fill(what, deadline, false);
  }
}

void Connection::fail(std::string_view what, const std::exception& error) {
  broken_ = true;
  const auto* transport = dynamic_cast<const TransportError*>(&error);
  const auto kind = transport != nullptr ? transport->kind() : TransportError::Kind::kFailed;
  const std::string_view option = connecting_ ? "connect_timeout" : "command_timeout";
  const auto timeout = connecting_ ? connect_timeout_ : command_timeout_;
  if (transport == nullptr) {
    throw ProtocolError(
        fmt::format("{}: {}: protocol error: {}; is this a Redis server? (a TLS "
                    "port answers a plain client so: use rediss://)",
                    redacted_, what, error.what()));
  }
  switch (kind) {
    case TransportError::Kind::kTimeout:
      if (std::string_view(error.what()) == "TLS handshake") {
        throw Timeout(fmt::format(
            "{}: the TLS handshake timed out after {} ms ({}); the server may be paused or "
            "overloaded, or this is a plain (non-TLS) port, which waits silently for the rest "
            "of the handshake: use redis:// for it",
            redacted_, timeout.count(), option));
      }
      throw Timeout(
          fmt::format("{}: {} timed out after {} ms ({}); the server may be paused, overloaded or "
                      "unreachable",
                      redacted_, what, timeout.count(), option));
    case TransportError::Kind::kUnknownHost:
      throw ConfigError(fmt::format("cannot connect to {}: {}; check the host name in the URL",
                                    redacted_, error.what()));
    case TransportError::Kind::kRejected:
      throw ConfigError(fmt::format("{}: {}", redacted_, error.what()));
    case TransportError::Kind::kClosed:
    case TransportError::Kind::kFailed:
      break;
  }
  if (what == "connect") {
    throw StoreUnavailable(fmt::format(
        "cannot connect to {}: {}; check that redis-server is running and the URL is right",
        redacted_, error.what()));
  }
  // A TLS port resets a plain client at its first command.
  const bool maybe_tls_port =
      !answered_ && kind == TransportError::Kind::kClosed && !endpoint_.tls && !tls_;
  throw StoreUnavailable(
      fmt::format("{}: {} failed: {}{}", redacted_, what, error.what(),
                  maybe_tls_port ? " (if this is a TLS port, use rediss://)" : ""));
}

void Connection::subscribe(std::span<const std::string_view> channels) {
  if (channels.empty()) {
    // SUBSCRIBE alone gets an error reply that no read would consume.
    throw InvalidArgument("Connection::subscribe needs at least one channel");
  }
  std::vector<std::string_view> args{"SUBSCRIBE"};
  args.insert(args.end(), channels.begin(), channels.end());
  std::string encoded;
  encode_command(args, encoded);
  check_usable("SUBSCRIBE");
  const Deadline deadline = detail::deadline_after(command_timeout_);
  try {
    send(encoded, "SUBSCRIBE", deadline);
    for (std::size_t i = 0; i < channels.size(); ++i) {
      read_reply("SUBSCRIBE", deadline).check("SUBSCRIBE");
    }
  } catch (...) {
    broken_ = true;
    throw;
  }
}

std::optional<Reply> Connection::next_message(std::chrono::milliseconds timeout) {
  check_usable("waiting for a message");
  // Clamped: now + milliseconds::max() overflows the clock.
  const Deadline deadline = std::chrono::steady_clock::now() +
                            std::clamp(timeout, std::chrono::milliseconds(0), kMaxOptionDuration);
  try {
    for (;;) {
      // One read can bring several messages (a script that publishes twice):
      // hand out the parsed ones before waiting on the socket.
      if (std::optional<Reply> message = parsed_reply("message")) return message;
      // A message that has begun to arrive stays in the parser for the next
      // call: the connection is still in step.
      if (!transport_->has_buffered() && !transport_->wait_readable(deadline)) {
        return std::nullopt;
      }
      if (!fill("message", deadline, true)) return std::nullopt;
    }
  } catch (...) {
    broken_ = true;
    throw;
  }
}

bool Connection::broken() const noexcept { return broken_ || transport_ == nullptr; }

bool Connection::looks_alive() const noexcept {
  if (broken() || owner_ != ::getpid()) return false;
  // Bytes read and not parsed, or a reply half parsed: the next caller
  // would read them.
  if (reader_->pos < reader_->len || reader_->ridx >= 0) return false;
  if (transport_->has_buffered()) return false;
  pollfd fd{.fd = transport_->fd(), .events = POLLIN, .revents = 0};
  const int ready = ::poll(&fd, 1, 0);
  // Readable on an idle connection means EOF (the server went away) or stray
  // data that would desynchronise replies; either way, do not reuse it.
  return ready == 0 || (ready < 0 && errno == EINTR);
}

}  // namespace prodsafe::redis
