#include "prodsafe/redis/client.hpp"

#include <charconv>

#include <fmt/format.h>

#include "cluster.hpp"
#include "prodsafe/core/error.hpp"
#include "run_pipeline.hpp"

namespace prodsafe::redis {

Client::Client(std::string_view url, Options options)
    : Client(parse_url(url), std::move(options)) {}

Client::Client(Endpoint endpoint, Options options)
    : endpoint_(std::move(endpoint)), options_(std::move(options)) {
  if (endpoint_.topology == Endpoint::Topology::kCluster) {
    cluster_ = std::make_unique<detail::ClusterRouter>(endpoint_, options_);
  } else {
    pool_ = std::make_unique<ConnectionPool>(endpoint_, options_);
  }
}

Client::~Client() = default;

ConnectionPool& Client::pool() {
  if (!pool_) {
    throw InvalidArgument(fmt::format(
        "Client::pool(): {} is a cluster, with a pool for each node; use Client::stats()",
        endpoint_.redacted()));
  }
  return *pool_;
}

PoolStats Client::stats() const { return pool_ ? pool_->stats() : cluster_->stats(); }

Reply Client::command(std::initializer_list<std::string_view> args) {
  return command(std::span<const std::string_view>(args.begin(), args.size()));
}

Reply Client::command(const std::vector<std::string>& args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  return command(std::span<const std::string_view>(views));
}

namespace {

[[noreturn]] void refuse(std::string_view command, std::string_view advice) {
  throw InvalidArgument(fmt::format(
      "Client::command: {} would change the pooled connection for the callers that use it "
      "next, so it is not sent; {}",
      command, advice));
}

}  // namespace

namespace detail {

std::vector<Reply> run_pipeline(Connection& connection, const Pipeline& pipeline) {
  std::vector<Reply> replies = connection.pipeline(pipeline);
  for (const std::size_t index : pipeline.state_endings()) {
    const Reply& reply = replies[index];
    if (reply.is_error() && reply.error_message().rfind("EXECABORT", 0) != 0) {
      connection.mark_broken();  // still in the transaction, or watching
    }
  }
  return replies;
}

}  // namespace detail

Reply Client::execute(std::span<const std::string_view> args) {
  const CommandState state = classify_command(args);
  if (state.change != StateChange::kNone && state.change != StateChange::kUnwatch) [[unlikely]] {
    refuse(state.name, state.advice);
  }
  if (cluster_) [[unlikely]] {
    return cluster_->command(args);
  }
  return pool_->checkout()->command(args);
}

Reply Client::command(std::span<const std::string_view> args) {
  Reply reply = execute(args);
  if (reply.is_error()) {
    reply.check(fmt::format("{} on {}", args.empty() ? "" : args.front(), endpoint().redacted()));
  }
  return reply;
}

std::vector<Reply> Client::pipeline(const Pipeline& pipeline) {
  if (pipeline.changes_connection_state()) [[unlikely]] {
    throw InvalidArgument(fmt::format(
        "Client::pipeline: the pipeline would leave the pooled connection changed for the "
        "callers that use it next, so it is not sent: {}",
        pipeline.connection_state_change()));
  }
  if (cluster_) [[unlikely]] {
    return cluster_->pipeline(pipeline);
  }
  auto lease = pool_->checkout();
  return detail::run_pipeline(*lease, pipeline);
}

std::unique_ptr<Connection> Client::dedicated_connection() const {
  return pool_ ? pool_->connect() : cluster_->connect();
}

std::string Client::ping() { return command({"PING"}).str(); }

std::optional<std::string> Client::get(std::string_view key) {
  return command({"GET", key}).optional_str();
}

void Client::set(std::string_view key, std::string_view value, std::chrono::milliseconds ttl) {
  if (ttl.count() < 0) throw InvalidArgument("Client::set: the ttl must not be negative");
  if (ttl.count() == 0) {
    command({"SET", key, value});
  } else {
    const std::string ms = std::to_string(ttl.count());
    command({"SET", key, value, "PX", ms});
  }
}

long long Client::del(std::string_view key) { return command({"DEL", key}).integer(); }

long long Client::incr(std::string_view key) { return command({"INCR", key}).integer(); }

std::string Client::info(std::string_view section) {
  if (section.empty()) return command({"INFO"}).str();
  return command({"INFO", section}).str();
}

long long Client::server_time_us() {
  const Reply reply = command({"TIME"});
  const auto& parts = reply.array();
  if (parts.size() != 2) {
    throw ProtocolError(fmt::format("TIME returned {} elements, expected 2", parts.size()));
  }
  long long seconds = 0;
  long long micros = 0;
  for (auto [text, out] :
       {std::pair{&parts[0].str(), &seconds}, std::pair{&parts[1].str(), &micros}}) {
    const auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), *out);
    if (ec != std::errc() || ptr != text->data() + text->size()) {
      throw ProtocolError(fmt::format("TIME returned a non-number: '{}'", *text));
    }
  }
  return seconds * 1'000'000 + micros;
}

std::string Client::key(std::string_view name) const {
  std::string full;
  full.reserve(options().key_prefix.size() + name.size());
  full.append(options().key_prefix).append(name);
  return full;
}

}  // namespace prodsafe::redis
