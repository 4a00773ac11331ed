#include "cluster.hpp"

#include <algorithm>
#include <charconv>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cluster_topology.hpp"
#include "command_keys.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "run_pipeline.hpp"

namespace prodsafe::redis::detail {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

bool name_is(std::string_view name, std::string_view upper) {
  return name.size() == upper.size() &&
         std::equal(name.begin(), name.end(), upper.begin(), [](char a, char b) {
           return (a >= 'a' && a <= 'z' ? static_cast<char>(a - 'a' + 'A') : a) == b;
         });
}

std::string_view first_word(std::string_view text) { return text.substr(0, text.find(' ')); }

// The replies that mean "not run; try again shortly" on a cluster.
bool wait_and_retry(const Reply& reply) {
  if (!reply.is_error()) return false;
  const std::string_view word = first_word(reply.error_message());
  return word == "TRYAGAIN" || word == "CLUSTERDOWN" || word == "LOADING";
}

// The commands of a pipeline, decoded from the RESP that Pipeline wrote
// (arrays of bulk strings only): views into `encoded`.
std::vector<std::vector<std::string_view>> decode_commands(std::string_view encoded) {
  std::vector<std::vector<std::string_view>> commands;
  std::size_t at = 0;
  const auto number = [&](char marker) {
    if (at >= encoded.size() || encoded[at] != marker) {
      throw ProtocolError("cluster pipeline: the pipeline's encoding is not one prodsafe wrote");
    }
    const std::size_t end = encoded.find("\r\n", at);
    std::size_t value = 0;
    std::from_chars(encoded.data() + at + 1, encoded.data() + end, value);
    at = end + 2;
    return value;
  };
  while (at < encoded.size()) {
    const std::size_t count = number('*');
    std::vector<std::string_view> args;
    args.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t length = number('$');
      args.push_back(encoded.substr(at, length));
      at += length + 2;
    }
    commands.push_back(std::move(args));
  }
  return commands;
}

}  // namespace

ClusterRouter::ClusterRouter(Endpoint endpoint, Options options)
    : endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      redacted_(endpoint_.redacted()) {
  validate_options(options_);
  validate_tls_endpoint(endpoint_, options_.tls);
}

ClusterRouter::~ClusterRouter() = default;

std::optional<int> ClusterRouter::slot_of(std::span<const std::string_view> args) {
  const CommandSlot found = command_slot(args);
  if (found.kind == SlotKind::kSlot) return found.slot;
  if (found.kind == SlotKind::kAnyNode || args.empty()) return std::nullopt;
  // A command prodsafe does not know: the server says where its keys are.
  std::vector<std::string_view> ask{"COMMAND", "GETKEYS"};
  ask.insert(ask.end(), args.begin(), args.end());
  ConnectionPool* any = route(std::nullopt);
  if (any == nullptr) return std::nullopt;
  const Reply keys = any->checkout()->command(std::span<const std::string_view>(ask));
  if (keys.is_error() || keys.type() != Reply::Type::kArray) {
    return std::nullopt;  // no keys ("The command has no key arguments"), or unknown to it too
  }
  std::vector<std::string_view> names;
  for (const Reply& key : keys.array()) {
    if (key.type() == Reply::Type::kString) names.push_back(key.str());
  }
  return keys_slot(args.front(), names);
}

ConnectionPool& ClusterRouter::pool_for(const HostPort& node) {
  const std::string name = node.str();
  std::lock_guard lock(mutex_);
  auto& pool = pools_[name];
  if (!pool) pool = std::make_unique<ConnectionPool>(endpoint_.server(node), options_);
  return *pool;
}

std::shared_ptr<ClusterRouter::Routes> ClusterRouter::routes() {
  std::shared_ptr<Routes> current;
  {
    std::lock_guard lock(mutex_);
    current = routes_;
  }
  if (!current) {
    refresh(true);
    std::lock_guard lock(mutex_);
    return routes_;
  }
  if (Clock::now() - current->fetched > kRefreshEvery) refresh(false);
  return current;
}

ConnectionPool* ClusterRouter::route(const std::optional<int>& slot) {
  const std::shared_ptr<Routes> table = routes();
  if (!slot) {
    if (table->masters.empty()) return nullptr;
    static thread_local std::size_t next = 0;
    return table->masters[next++ % table->masters.size()];
  }
  return table->owner[static_cast<std::size_t>(*slot)].load(std::memory_order_acquire);
}

void ClusterRouter::refresh(bool must) {
  std::unique_lock guard(refresh_mutex_, std::defer_lock);
  if (must) {
    guard.lock();
    std::lock_guard lock(mutex_);
    if (routes_ && Clock::now() - last_refresh_ < kMinRefreshInterval) return;  // just done
  } else {
    if (!guard.try_lock()) return;  // another caller is refreshing
    if (Clock::now() - last_refresh_ < kMinRefreshInterval) return;
  }
  last_refresh_ = Clock::now();

  // Ask the masters we know, then the URL's seeds.
  std::vector<HostPort> candidates;
  {
    std::lock_guard lock(mutex_);
    if (routes_) {
      for (ConnectionPool* pool : routes_->masters) {
        candidates.push_back(HostPort{pool->endpoint().host, pool->endpoint().port});
      }
    }
  }
  for (const HostPort& seed : endpoint_.servers) {
    if (std::find(candidates.begin(), candidates.end(), seed) == candidates.end()) {
      candidates.push_back(seed);
    }
  }
  std::vector<std::string> problems;
  for (const HostPort& node : candidates) {
    try {
      ConnectionPool& pool = pool_for(node);
      ClusterTopology topology;
      {
        auto lease = pool.checkout();
        const Reply shards = lease->command({"CLUSTER", "SHARDS"});
        if (!shards.is_error()) {
          topology = parse_cluster_shards(shards);
        } else {
          // Before Redis 7.0: CLUSTER SLOTS.
          const Reply slots = lease->command({"CLUSTER", "SLOTS"});
          slots.check(fmt::format("CLUSTER SLOTS on {}", node.str()));
          topology = parse_cluster_slots(slots);
        }
      }
      auto fresh = std::make_shared<Routes>();
      fresh->fetched = Clock::now();
      std::vector<ConnectionPool*> by_node(topology.nodes.size(), nullptr);
      for (std::size_t slot = 0; slot < static_cast<std::size_t>(kClusterSlots); ++slot) {
        const std::uint16_t index = topology.slot_master[slot];
        if (index == kUnassignedSlot) continue;
        ConnectionPool*& pool_of_node = by_node[index];
        if (pool_of_node == nullptr) {
          const ClusterNode& master = topology.nodes[index];
          // TLS from a rediss-cluster:// URL or from Options::tls.enabled.
          const bool tls = endpoint_.tls || options_.tls.enabled;
          const int port = tls && master.tls_port != 0 ? master.tls_port : master.port;
          if (port == 0) {
            throw ConfigError(
                fmt::format("master {} serves slots on TLS only (tls-port {}); connect with "
                            "rediss-cluster://",
                            master.host.empty() ? node.host : master.host, master.tls_port));
          }
          pool_of_node = &pool_for(HostPort{master.host.empty() ? node.host : master.host, port});
          fresh->masters.push_back(pool_of_node);
        }
        fresh->owner[slot].store(pool_of_node, std::memory_order_relaxed);
      }
      if (fresh->masters.empty()) {
        throw StoreUnavailable(fmt::format("{} serves no slots", node.str()));
      }
      std::lock_guard lock(mutex_);
      routes_ = std::move(fresh);
      return;
    } catch (const Error& error) {
      problems.push_back(fmt::format("{}: {}", node.str(), error.what()));
    }
  }
  std::string detail;
  for (const std::string& problem : problems) {
    if (!detail.empty()) detail += "; ";
    detail += problem;
  }
  const std::string message =
      fmt::format("{}: no node of the cluster answered CLUSTER SHARDS ({})", redacted_, detail);
  if (must) throw StoreUnavailable(message);
  logger()->warn("{}; keeping the slot map from before", message);
}

Reply ClusterRouter::command(std::span<const std::string_view> args) {
  const std::optional<int> slot = slot_of(args);
  const bool bounded = options_.command_timeout.count() > 0;
  const Clock::time_point deadline = Clock::now() + options_.command_timeout;
  const Clock::time_point retry_deadline =
      bounded ? deadline : Clock::now() + kUnboundedRetryWindow;
  ConnectionPool* target = nullptr;
  bool asking = false;
  int redirects = 0;
  milliseconds wait{5};
  for (;;) {
    if (target == nullptr) target = route(slot);
    Reply reply;
    if (target == nullptr) {
      // No master serves the slot: the cluster is down or being resharded.
      reply = Reply::error(fmt::format("CLUSTERDOWN slot {} has no master in the slot map of {}",
                                       slot.value_or(-1), redacted_));
    } else {
      try {
        auto lease = target->checkout();
        if (asking) {
          Pipeline pipeline;
          pipeline.add({"ASKING"}).add(args);
          reply = std::move(lease->pipeline(pipeline).back());
        } else {
          reply = lease->command(args);
        }
      } catch (const StoreUnavailable&) {
        refresh(false);  // a master may have failed over
        throw;
      }
    }
    if (!reply.is_error()) return reply;
    if (const std::optional<Redirect> redirect = parse_redirect(reply.error_message())) {
      if (++redirects > kMaxRedirects) {
        throw StoreUnavailable(fmt::format(
            "{} on {}: more than {} redirects (the last: {}); the cluster's slots are moving, "
            "try again shortly",
            args.empty() ? "" : args.front(), redacted_, kMaxRedirects, reply.error_message()));
      }
      if (bounded && Clock::now() >= deadline) {
        throw Timeout(fmt::format(
            "{} on {}: command_timeout ({} ms) passed while following redirects (the last: {}); "
            "the cluster's slots are moving, try again shortly",
            args.empty() ? "" : args.front(), redacted_, options_.command_timeout.count(),
            reply.error_message()));
      }
      HostPort node{redirect->host, redirect->port};
      if (node.host.empty() && target != nullptr) node.host = target->endpoint().host;
      ConnectionPool* next = &pool_for(node);
      asking = redirect->kind == RedirectKind::kAsk;
      if (!asking) {
        routes()->owner[static_cast<std::size_t>(redirect->slot)].store(next,
                                                                        std::memory_order_release);
        refresh(false);
      }
      target = next;
      continue;
    }
    if (wait_and_retry(reply) && Clock::now() + wait < retry_deadline) {
      std::this_thread::sleep_for(wait);
      wait = std::min(wait * 2, milliseconds(100));
      if (first_word(reply.error_message()) == "CLUSTERDOWN") {
        refresh(false);
        target = nullptr;
        asking = false;
      }
      continue;
    }
    return reply;
  }
}

std::vector<Reply> ClusterRouter::pipeline(const Pipeline& pipeline) {
  std::vector<Reply> replies(pipeline.size());
  if (pipeline.empty()) return replies;
  const std::vector<std::vector<std::string_view>> commands = decode_commands(pipeline.encoded());
  const std::size_t count = commands.size();
  std::vector<std::optional<int>> slots(count);
  for (std::size_t i = 0; i < count; ++i) slots[i] = slot_of(commands[i]);

  // A MULTI ... EXEC (or DISCARD) block goes whole to the node of its keys,
  // which must share one slot; so do the WATCHes before it (and what runs
  // between them and MULTI): a WATCH must be on the connection that runs EXEC,
  // or it guards nothing and stays on a pooled connection.
  std::vector<std::size_t> block_of(count, count);  // the block's first command, or count
  // The first WATCH not yet in a block, or `count` for none (not an
  // optional: GCC's -O3 warns it may be read uninitialized).
  std::size_t watch_start = count;
  for (std::size_t i = 0; i < count; ++i) {
    if (commands[i].empty()) continue;
    if (name_is(commands[i].front(), "WATCH")) {
      if (watch_start == count) watch_start = i;
      continue;
    }
    if (name_is(commands[i].front(), "UNWATCH")) {
      watch_start = count;
      continue;
    }
    if (!name_is(commands[i].front(), "MULTI")) continue;
    const std::size_t begin = watch_start == count ? i : watch_start;
    watch_start = count;
    std::size_t end = i;
    std::optional<int> block_slot;
    std::size_t first_keyed = begin;
    for (std::size_t j = begin; j < count; ++j) {
      end = j;
      block_of[j] = begin;
      if (slots[j]) {
        if (block_slot && *block_slot != *slots[j]) {
          throw InvalidArgument(fmt::format(
              "Client::pipeline on {}: a [WATCH ...] MULTI ... EXEC block must keep its keys in "
              "one hash slot on a cluster, and '{}' and '{}' are in slots {} and {}; give the "
              "keys a shared hash tag, {{...}}",
              redacted_, fmt::join(commands[first_keyed], " "), fmt::join(commands[j], " "),
              *block_slot, *slots[j]));
        }
        if (!block_slot) first_keyed = j;
        block_slot = slots[j];
      }
      if (j > i && !commands[j].empty() &&
          (name_is(commands[j].front(), "EXEC") || name_is(commands[j].front(), "DISCARD"))) {
        break;
      }
    }
    for (std::size_t j = begin; j <= end; ++j) slots[j] = block_slot;
    i = end;
  }

  // Each command's node: its slot's owner; a command without keys goes with
  // the command before it (or, at the start, the first command with keys).
  std::vector<ConnectionPool*> nodes(count, nullptr);
  ConnectionPool* previous = nullptr;
  for (std::size_t i = 0; i < count; ++i) {
    if (slots[i]) {
      nodes[i] = route(slots[i]);
      if (nodes[i] == nullptr) {
        // A map fetched while the slot's master was failed and no replica
        // promoted yet: ask again (as command() does on CLUSTERDOWN), or
        // this map would stand until the periodic refresh.
        refresh(false);
        nodes[i] = route(slots[i]);
      }
      if (nodes[i] == nullptr) {
        throw StoreUnavailable(fmt::format(
            "Client::pipeline on {}: slot {} has no master (the cluster is down or being "
            "resharded); try again shortly",
            redacted_, *slots[i]));
      }
      previous = nodes[i];
    } else {
      nodes[i] = previous;
    }
  }
  ConnectionPool* first = nullptr;
  for (ConnectionPool* node : nodes) {
    if (node != nullptr) {
      first = node;
      break;
    }
  }
  if (first == nullptr) first = route(std::nullopt);
  if (first == nullptr) {
    throw StoreUnavailable(
        fmt::format("Client::pipeline on {}: no master in the slot map", redacted_));
  }
  for (ConnectionPool*& node : nodes) {
    if (node == nullptr) node = first;
  }

  // One pipeline per node, in the order of the commands.
  std::vector<ConnectionPool*> order;
  for (ConnectionPool* node : nodes) {
    if (std::find(order.begin(), order.end(), node) == order.end()) order.push_back(node);
  }
  for (ConnectionPool* node : order) {
    Pipeline part;
    std::vector<std::size_t> positions;
    for (std::size_t i = 0; i < count; ++i) {
      if (nodes[i] != node) continue;
      part.add(commands[i]);
      positions.push_back(i);
    }
    std::vector<Reply> answers;
    try {
      auto lease = node->checkout();
      answers = run_pipeline(*lease, part);
    } catch (const StoreUnavailable&) {
      refresh(false);
      throw;
    }
    for (std::size_t k = 0; k < positions.size(); ++k) {
      replies[positions[k]] = std::move(answers[k]);
    }
  }

  // A command that met MOVED or ASK did not run: send it again, with the
  // commands without keys that went with it (a WAIT must wait on the node
  // that ran the write; their replies from the old node are replaced).
  // In a transaction that makes EXEC fail with EXECABORT; then the whole
  // block, which did not run either, is sent again once: after MOVED to the
  // slot's owner in the refreshed map, after ASK to the node it names with
  // ASKING before each command up to MULTI (inside MULTI the flag holds
  // until EXEC). A redirect that does not parse is left in place, as any
  // error reply: the other commands ran, and their replies must not be lost.
  for (std::size_t i = 0; i < count; ++i) {
    std::optional<Redirect> redirect;
    if (replies[i].is_error()) {
      try {
        redirect = parse_redirect(replies[i].error_message());
      } catch (const ProtocolError& error) {
        logger()->warn("{}: {}", redacted_, error.what());
      }
    }
    if (!redirect) continue;
    if (block_of[i] == count) {
      std::size_t end = i;
      while (end + 1 < count && block_of[end + 1] == count && !slots[end + 1] &&
             nodes[end + 1] == nodes[i]) {
        ++end;
      }
      if (end == i) {
        replies[i] = command(commands[i]);
        continue;
      }
      std::vector<Reply> again = follow(std::span(commands).subspan(i, end - i + 1), *redirect,
                                        std::move(replies[i]), nodes[i]);
      for (std::size_t j = i; j <= end; ++j) replies[j] = std::move(again[j - i]);
      i = end;
      continue;
    }
    const std::size_t begin = block_of[i];
    std::size_t end = begin;
    while (end + 1 < count && block_of[end + 1] == begin) ++end;
    const bool asking = redirect->kind == RedirectKind::kAsk;
    ConnectionPool* node = nullptr;
    if (asking) {
      HostPort at{redirect->host, redirect->port};
      if (at.host.empty()) at.host = nodes[i]->endpoint().host;
      node = &pool_for(at);
    } else {
      refresh(false);
      node = slots[begin] ? route(slots[begin]) : first;
    }
    if (node == nullptr) continue;  // keep the MOVED replies: no master now
    Pipeline block;
    std::vector<bool> added_asking;  // per command of the block sent
    bool in_multi = false;
    for (std::size_t j = begin; j <= end; ++j) {
      if (asking && !in_multi) block.add({"ASKING"});
      added_asking.push_back(asking && !in_multi);
      in_multi = in_multi || (!commands[j].empty() && name_is(commands[j].front(), "MULTI"));
      block.add(commands[j]);
    }
    std::vector<Reply> again;
    {
      auto lease = node->checkout();
      again = run_pipeline(*lease, block);
    }
    std::size_t at = 0;
    for (std::size_t j = begin; j <= end; ++j) {
      if (added_asking[j - begin]) ++at;  // ASKING's OK
      replies[j] = std::move(again[at++]);
    }
    i = end;
  }
  return replies;
}

std::vector<Reply> ClusterRouter::follow(std::span<const std::vector<std::string_view>> group,
                                         Redirect redirect, Reply redirected,
                                         ConnectionPool* from) {
  const std::span<const std::string_view> first = group.front();
  const bool bounded = options_.command_timeout.count() > 0;
  const Clock::time_point deadline = Clock::now() + options_.command_timeout;
  ConnectionPool* target = from;
  for (int redirects = 1;; ++redirects) {
    if (redirects > kMaxRedirects) {
      throw StoreUnavailable(fmt::format(
          "{} on {}: more than {} redirects (the last: {}); the cluster's slots are moving, "
          "try again shortly",
          first.empty() ? "" : first.front(), redacted_, kMaxRedirects,
          redirected.error_message()));
    }
    if (bounded && Clock::now() >= deadline) {
      throw Timeout(fmt::format(
          "{} on {}: command_timeout ({} ms) passed while following redirects (the last: {}); "
          "the cluster's slots are moving, try again shortly",
          first.empty() ? "" : first.front(), redacted_, options_.command_timeout.count(),
          redirected.error_message()));
    }
    HostPort node{redirect.host, redirect.port};
    if (node.host.empty() && target != nullptr) node.host = target->endpoint().host;
    ConnectionPool* next = &pool_for(node);
    const bool asking = redirect.kind == RedirectKind::kAsk;
    if (!asking) {
      routes()->owner[static_cast<std::size_t>(redirect.slot)].store(next,
                                                                     std::memory_order_release);
      refresh(false);
    }
    Pipeline pipeline;
    if (asking) pipeline.add({"ASKING"});
    for (const std::vector<std::string_view>& command : group) pipeline.add(command);
    std::vector<Reply> answers;
    try {
      auto lease = next->checkout();
      answers = run_pipeline(*lease, pipeline);
    } catch (const StoreUnavailable&) {
      refresh(false);
      throw;
    }
    if (asking) answers.erase(answers.begin());
    if (!answers.front().is_error()) return answers;
    // Redirected again; a redirect that does not parse stays in place, as
    // in pipeline().
    std::optional<Redirect> again;
    try {
      again = parse_redirect(answers.front().error_message());
    } catch (const ProtocolError& error) {
      logger()->warn("{}: {}", redacted_, error.what());
    }
    if (!again) return answers;
    redirect = *again;
    redirected = std::move(answers.front());
    target = next;
  }
}

std::unique_ptr<Connection> ClusterRouter::connect() {
  ConnectionPool* pool = route(std::nullopt);
  if (pool == nullptr) {
    throw StoreUnavailable(fmt::format("{}: no master in the slot map", redacted_));
  }
  return pool->connect();
}

PoolStats ClusterRouter::stats() const {
  PoolStats total;
  std::lock_guard lock(mutex_);
  for (const auto& [name, pool] : pools_) {
    const PoolStats one = pool->stats();
    total.open += one.open;
    total.idle += one.idle;
    total.created += one.created;
    total.dropped += one.dropped;
    total.connect_failures += one.connect_failures;
    total.checkout_timeouts += one.checkout_timeouts;
  }
  return total;
}

std::string ClusterRouter::owner_of(int slot) {
  ConnectionPool* pool = route(slot);
  if (pool == nullptr) return {};
  return HostPort{pool->endpoint().host, pool->endpoint().port}.str();
}

}  // namespace prodsafe::redis::detail
