#include "prodsafe/redis/connection.hpp"

#include <poll.h>
#include <sys/time.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string_view>

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::redis {
namespace {

timeval to_timeval(std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  return tv;
}

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
  if (options.pool_size == 0) {
    throw InvalidArgument("redis::Options::pool_size is 0; a pool needs at least 1 connection");
  }
}

Connection::Connection(const Endpoint& endpoint, const Options& options)
    : endpoint_(endpoint), redacted_(endpoint.redacted()) {
  validate_options(options);
  if (options.user) endpoint_.user = *options.user;
  if (options.password) endpoint_.password = *options.password;
  if (options.user || options.password) redacted_ = endpoint_.redacted();
  connect(options);
}

void Connection::ContextDeleter::operator()(redisContext* context) const noexcept {
  redisFree(context);
}

void Connection::connect(const Options& options) {
  const bool timed = options.connect_timeout.count() > 0;
  const timeval tv = to_timeval(options.connect_timeout);
  if (endpoint_.transport == Endpoint::Transport::kUnix) {
    context_.reset(timed ? redisConnectUnixWithTimeout(endpoint_.socket_path.c_str(), tv)
                         : redisConnectUnix(endpoint_.socket_path.c_str()));
  } else {
    context_.reset(timed ? redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, tv)
                         : redisConnect(endpoint_.host.c_str(), endpoint_.port));
  }
  if (context_ == nullptr) {
    broken_ = true;
    throw StoreUnavailable(
        fmt::format("cannot connect to {}: out of memory for the connection", redacted_));
  }
  timeout_ms_ = options.connect_timeout.count();
  if (context_->err != 0) fail("connect");
  if (endpoint_.transport == Endpoint::Transport::kTcp) redisEnableKeepAlive(context_.get());
  redisSetTimeout(context_.get(), to_timeval(options.connect_timeout));

  if (!endpoint_.password.empty()) {
    const Reply reply = endpoint_.user.empty()
                            ? command({"AUTH", endpoint_.password})
                            : command({"AUTH", endpoint_.user, endpoint_.password});
    if (reply.is_error()) {
      broken_ = true;
      throw ReplyError(
          reply.error_message(),
          fmt::format("AUTH to {} refused; check the user name and password", redacted_));
    }
  }
  if (endpoint_.db != 0) {
    const std::string db = std::to_string(endpoint_.db);
    const Reply reply = command({"SELECT", db});
    if (reply.is_error()) {
      broken_ = true;
      throw ReplyError(reply.error_message(),
                       fmt::format("SELECT {} on {} refused; the server may have fewer databases "
                                   "(see 'databases' in redis.conf)",
                                   db, redacted_));
    }
  }
  redisSetTimeout(context_.get(), to_timeval(options.command_timeout));
  timeout_ms_ = options.command_timeout.count();
  timeout_option_ = "command_timeout";
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
  send(encoded, command_name(args));
  return read_reply(command_name(args));
}

std::vector<Reply> Connection::pipeline(const Pipeline& pipeline) {
  std::vector<Reply> replies;
  if (pipeline.empty()) return replies;
  replies.reserve(pipeline.size());
  send(pipeline.encoded(), "pipeline");
  for (std::size_t i = 0; i < pipeline.size(); ++i) replies.push_back(read_reply("pipeline"));
  return replies;
}

void Connection::send(std::string_view encoded, std::string_view what) {
  if (broken_) {
    throw StoreUnavailable(fmt::format(
        "{}: {} on a broken connection; take a new one from the pool", redacted_, what));
  }
  if (redisAppendFormattedCommand(context_.get(), encoded.data(), encoded.size()) != REDIS_OK) {
    fail(what);
  }
}

Reply Connection::read_reply(std::string_view what) {
  void* raw = nullptr;
  if (redisGetReply(context_.get(), &raw) != REDIS_OK || raw == nullptr) fail(what);
  std::unique_ptr<redisReply, void (*)(void*)> reply(static_cast<redisReply*>(raw),
                                                     freeReplyObject);
  return convert(reply.get());
}

void Connection::fail(std::string_view what) {
  const int saved_errno = errno;
  broken_ = true;
  const int code = context_ != nullptr ? context_->err : REDIS_ERR_OTHER;
  const std::string reason = context_ != nullptr ? context_->errstr : "unknown error";
  const bool timed_out =
      (code == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK ||
                                saved_errno == ETIMEDOUT || saved_errno == EINPROGRESS)) ||
      reason == "Resource temporarily unavailable" || reason == "Connection timed out";
  if (timed_out) {
    throw Timeout(
        fmt::format("{}: {} timed out after {} ms ({}); the server may be paused, overloaded or "
                    "unreachable",
                    redacted_, what, timeout_ms_, timeout_option_));
  }
  if (code == REDIS_ERR_PROTOCOL) {
    throw ProtocolError(fmt::format("{}: {}: protocol error: {}; is this a Redis server?",
                                    redacted_, what, reason));
  }
  if (what == "connect") {
    throw StoreUnavailable(fmt::format(
        "cannot connect to {}: {}; check that redis-server is running and the URL is right",
        redacted_, reason));
  }
  throw StoreUnavailable(fmt::format("{}: {} failed: {}", redacted_, what, reason));
}

void Connection::subscribe(std::span<const std::string_view> channels) {
  std::vector<std::string_view> args{"SUBSCRIBE"};
  args.insert(args.end(), channels.begin(), channels.end());
  std::string encoded;
  encode_command(args, encoded);
  send(encoded, "SUBSCRIBE");
  for (std::size_t i = 0; i < channels.size(); ++i) read_reply("SUBSCRIBE").check("SUBSCRIBE");
}

std::optional<Reply> Connection::next_message(std::chrono::milliseconds timeout) {
  if (broken()) {
    throw StoreUnavailable(
        fmt::format("{}: waiting for a message on a broken connection", redacted_));
  }
  // One read() can bring several messages (a script that publishes twice);
  // hiredis keeps those after the first in its buffer, where poll() cannot
  // see them: hand them out before waiting on the socket.
  void* buffered = nullptr;
  if (redisGetReplyFromReader(context_.get(), &buffered) != REDIS_OK) fail("message");
  if (buffered != nullptr) {
    std::unique_ptr<redisReply, void (*)(void*)> reply(static_cast<redisReply*>(buffered),
                                                       freeReplyObject);
    return convert(reply.get());
  }
  pollfd fd{};
  fd.fd = context_->fd;
  fd.events = POLLIN;
  const int ready = ::poll(&fd, 1, static_cast<int>(timeout.count()));
  if (ready == 0 || (ready < 0 && errno == EINTR)) return std::nullopt;
  return read_reply("message");
}

bool Connection::broken() const noexcept {
  return broken_ || context_ == nullptr || context_->err != 0;
}

bool Connection::looks_alive() const noexcept {
  if (broken()) return false;
  pollfd fd{};
  fd.fd = context_->fd;
  fd.events = POLLIN;
  const int ready = ::poll(&fd, 1, 0);
  // Readable on an idle connection means EOF (the server went away) or stray
  // data that would desynchronise replies; either way, do not reuse it.
  return ready == 0 || (ready < 0 && errno == EINTR);
}

}  // namespace prodsafe::redis
