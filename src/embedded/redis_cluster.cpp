#include "prodsafe/embedded/redis_cluster.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include <fmt/format.h>

#include "node_probe.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/child_process.hpp"
#include "prodsafe/redis/connection.hpp"

namespace prodsafe::embedded {
namespace {

using std::chrono::milliseconds;

constexpr int kSlots = 16384;

void check_options(const RedisClusterOptions& options) {
  if (options.masters < 3 || options.masters > 16) {
    throw InvalidArgument(fmt::format(
        "RedisClusterOptions::masters must be 3 to 16 (redis-cli --cluster create needs 3), "
        "got {}",
        options.masters));
  }
  if (options.replicas_per_master < 0 || options.replicas_per_master > 2) {
    throw InvalidArgument(
        fmt::format("RedisClusterOptions::replicas_per_master must be 0 to 2, "
                    "got {}",
                    options.replicas_per_master));
  }
  if (options.node_timeout < milliseconds(100)) {
    throw InvalidArgument("RedisClusterOptions::node_timeout must be at least 100 ms");
  }
}

bool usable(const RedisServer& server) { return server.running() && !server.paused(); }

// An integer or a decimal string in a reply, or -1.
long long number(const redis::Reply& reply) {
  if (reply.type() == redis::Reply::Type::kInteger) return reply.integer();
  if (reply.type() == redis::Reply::Type::kString || reply.type() == redis::Reply::Type::kStatus) {
    try {
      return std::stoll(reply.str());
    } catch (const std::exception&) {
    }
  }
  return -1;
}

milliseconds since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
}

// The flags of the node on `port` in CLUSTER NODES text ("master",
// "myself,slave", "master,fail"), or empty when it is not listed.
std::string flags_of(const std::string& cluster_nodes, int port) {
  const std::string address = fmt::format("127.0.0.1:{}@", port);
  std::istringstream lines(cluster_nodes);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string id, where, flags;
    words >> id >> where >> flags;
    if (where.starts_with(address)) return flags;
  }
  return {};
}

}  // namespace

RedisCluster::RedisCluster(RedisClusterOptions options) : options_(std::move(options)) {
  check_options(options_);
  if (find_executable(options_.cli_executable).empty()) {
    throw ConfigError(
        fmt::format("cannot create a Redis Cluster: '{}' is not found; install the Debian package "
                    "redis-tools or set RedisClusterOptions::cli_executable",
                    options_.cli_executable));
  }
  std::vector<std::string> config{
      fmt::format("cluster-node-timeout {}", options_.node_timeout.count()),
      "cluster-announce-ip 127.0.0.1",
      "replica-announce-ip 127.0.0.1",
      // Redis waits 5 s by default before a diskless full sync.
      "repl-diskless-sync-delay 0",
  };
  if (options_.appendonly) {
    config.emplace_back("appendonly yes");
    config.emplace_back("appendfsync everysec");
  }
  config.insert(config.end(), options_.config.begin(), options_.config.end());
  const int total = options_.masters * (1 + options_.replicas_per_master);
  for (int i = 0; i < total; ++i) {
    nodes_.push_back(std::make_unique<RedisServer>(
        RedisServerOptions{.config = config,
                           .executable = options_.executable,
                           .keep_directory = options_.keep_directories,
                           .cluster = true}));
  }
  const auto start = std::chrono::steady_clock::now();
  create();
  wait_until_ok(std::max(milliseconds(0), options_.startup_timeout - since(start)), nodes_.size());
}

RedisCluster::~RedisCluster() = default;

void RedisCluster::create() {
  std::vector<std::string> argv{find_executable(options_.cli_executable).string(), "--cluster",
                                "create"};
  for (const auto& node : nodes_) argv.push_back(fmt::format("127.0.0.1:{}", node->port()));
  argv.insert(argv.end(), {"--cluster-replicas", std::to_string(options_.replicas_per_master),
                           "--cluster-yes"});
  const std::filesystem::path output = nodes_.front()->directory() / "cluster-create.out";
  const int status = run_child(argv, output, options_.startup_timeout);
  if (status != 0) {
    throw StoreUnavailable(
        fmt::format("redis-cli --cluster create failed (exit status {}); its output:\n{}", status,
                    last_lines(output, 30)));
  }
}

RedisServer& RedisCluster::node(std::size_t index) {
  if (index >= nodes_.size()) {
    throw InvalidArgument(
        fmt::format("RedisCluster::node({}): there are {} nodes", index, nodes_.size()));
  }
  return *nodes_[index];
}

RedisServer* RedisCluster::node_on_port(int port) noexcept {
  for (const auto& node : nodes_) {
    if (node->port() == port) return node.get();
  }
  return nullptr;
}

std::string RedisCluster::role(const RedisServer& node, int* master_port, std::string* link) const {
  if (!usable(node)) return {};
  std::string error;
  const std::optional<redis::Reply> reply = detail::query(node.port(), "", {"ROLE"}, error);
  if (!reply || reply->type() != redis::Reply::Type::kArray || reply->array().empty()) return {};
  const std::vector<redis::Reply>& items = reply->array();
  const std::string& name = items[0].str();
  if (name == "slave" && items.size() > 3) {
    if (master_port != nullptr) *master_port = static_cast<int>(number(items[2]));
    if (link != nullptr) *link = items[3].str();
  }
  return name;
}

std::vector<RedisServer*> RedisCluster::masters() {
  std::vector<RedisServer*> out;
  for (const auto& node : nodes_) {
    if (role(*node) == "master") out.push_back(node.get());
  }
  return out;
}

std::vector<RedisServer*> RedisCluster::replicas() {
  std::vector<RedisServer*> out;
  for (const auto& node : nodes_) {
    if (role(*node) == "slave") out.push_back(node.get());
  }
  return out;
}

std::vector<RedisServer*> RedisCluster::replicas_of(const RedisServer& master) {
  std::vector<RedisServer*> out;
  for (const auto& node : nodes_) {
    int following = 0;
    if (role(*node, &following) == "slave" && following == master.port()) {
      out.push_back(node.get());
    }
  }
  return out;
}

std::string RedisCluster::url() const {
  std::string hosts;
  for (const auto& node : nodes_) {
    hosts += fmt::format("{}127.0.0.1:{}", hosts.empty() ? "" : ",", node->port());
  }
  return "redis-cluster://" + hosts;
}

RedisServer& RedisCluster::slot_owner(int slot) {
  if (slot < 0 || slot >= kSlots) {
    throw InvalidArgument(
        fmt::format("RedisCluster::slot_owner({}): a slot is 0 to {}", slot, kSlots - 1));
  }
  std::string failures;
  for (const auto& node : nodes_) {
    if (!usable(*node)) continue;
    std::string error;
    const std::optional<redis::Reply> shards =
        detail::query(node->port(), "", {"CLUSTER", "SHARDS"}, error);
    if (!shards) {
      failures += "; " + error;
      continue;
    }
    for (const redis::Reply& shard : shards->array()) {
      const std::vector<redis::Reply>& parts = shard.array();
      const redis::Reply* ranges = nullptr;
      const redis::Reply* members = nullptr;
      for (std::size_t i = 0; i + 1 < parts.size(); i += 2) {
        if (parts[i].str() == "slots") ranges = &parts[i + 1];
        if (parts[i].str() == "nodes") members = &parts[i + 1];
      }
      if (ranges == nullptr || members == nullptr) continue;
      bool serves = false;
      for (std::size_t i = 0; i + 1 < ranges->array().size(); i += 2) {
        serves = serves ||
                 (number(ranges->array()[i]) <= slot && slot <= number(ranges->array()[i + 1]));
      }
      if (!serves) continue;
      for (const redis::Reply& member : members->array()) {
        std::map<std::string, std::string> fields = detail::fields(member);
        if (fields["role"] != "master") continue;
        RedisServer* owner = node_on_port(std::atoi(fields["port"].c_str()));
        if (owner != nullptr) return *owner;
      }
    }
    failures += fmt::format("; node {} names no master for the slot", node->port());
  }
  throw StoreUnavailable(fmt::format("no node names the master of slot {}{}", slot,
                                     failures.empty() ? "; no node is running" : failures));
}

void RedisCluster::wait_until_ok(milliseconds timeout, std::size_t known_nodes) {
  detail::wait_until(timeout, "the cluster did not become ok", [&](std::string& seen) {
    bool any = false;
    for (const auto& node : nodes_) {
      if (!usable(*node)) continue;
      any = true;
      std::string error;
      const std::optional<redis::Reply> reply =
          detail::query(node->port(), "", {"CLUSTER", "INFO"}, error);
      if (!reply) {
        seen = error;
        return false;
      }
      const redis::Info info = redis::parse_info(reply->str());
      const std::string state = info.get("cluster_state").value_or("?");
      const long long slots_ok = info.number("cluster_slots_ok").value_or(-1);
      const long long known = info.number("cluster_known_nodes").value_or(-1);
      if (state != "ok" || slots_ok != kSlots ||
          (known_nodes != 0 && known != static_cast<long long>(known_nodes))) {
        seen = fmt::format("node {}: cluster_state:{} cluster_slots_ok:{} cluster_known_nodes:{}",
                           node->port(), state, slots_ok, known);
        return false;
      }
      // At creation, also every replica known as one: cluster_state can be
      // ok while gossip has not yet told a node which master a replica
      // follows (it still lists it as a master without slots).
      if (known_nodes != 0) {
        const std::optional<redis::Reply> nodes =
            detail::query(node->port(), "", {"CLUSTER", "NODES"}, error);
        if (!nodes) {
          seen = error;
          return false;
        }
        const std::string text = nodes->str();
        std::size_t replicas = 0;
        for (std::size_t at = text.find("slave"); at != std::string::npos;
             at = text.find("slave", at + 1)) {
          ++replicas;
        }
        const auto wanted =
            static_cast<std::size_t>(options_.masters * options_.replicas_per_master);
        if (replicas != wanted) {
          seen = fmt::format("node {} lists {} of {} replicas as replicas", node->port(), replicas,
                             wanted);
          return false;
        }
      }
    }
    if (!any) seen = "no node is running";
    return any;
  });
}

namespace {

// Empty when every usable node lists `port` as a master that is not failing,
// else what one lists.
template <class Nodes>
std::string promotion_not_seen(const Nodes& nodes, int port) {
  for (const auto& node : nodes) {
    if (!usable(*node)) continue;
    std::string error;
    const std::optional<redis::Reply> reply =
        detail::query(node->port(), "", {"CLUSTER", "NODES"}, error);
    if (!reply) return error;
    const std::string flags = flags_of(reply->str(), port);
    if (flags.find("master") == std::string::npos || flags.find("fail") != std::string::npos) {
      return fmt::format("node {} lists {} with flags '{}'", node->port(), port, flags);
    }
  }
  return {};
}

}  // namespace

RedisCluster::Failover RedisCluster::kill_master(RedisServer& master, milliseconds timeout) {
  if (role(master) != "master") {
    throw InvalidArgument(
        fmt::format("RedisCluster::kill_master: node {} is not a running master", master.port()));
  }
  const std::vector<RedisServer*> candidates = replicas_of(master);
  if (candidates.empty()) {
    throw InvalidArgument(fmt::format(
        "RedisCluster::kill_master: master {} has no replica to promote", master.port()));
  }
  const auto start = std::chrono::steady_clock::now();
  master.kill();
  Failover failover;
  detail::wait_until(timeout,
                     fmt::format("no replica of killed master {} was promoted", master.port()),
                     [&](std::string& seen) {
                       for (RedisServer* candidate : candidates) {
                         if (role(*candidate) == "master") failover.promoted = candidate;
                       }
                       if (failover.promoted == nullptr) {
                         seen = "every replica still says it is a replica";
                         return false;
                       }
                       seen = promotion_not_seen(nodes_, failover.promoted->port());
                       return seen.empty();
                     });
  wait_until_ok(std::max(milliseconds(0), timeout - since(start)));
  failover.elapsed = since(start);
  return failover;
}

RedisCluster::Failover RedisCluster::manual_failover(RedisServer& replica, milliseconds timeout) {
  int master_port = 0;
  if (role(replica, &master_port) != "slave") {
    throw InvalidArgument(fmt::format(
        "RedisCluster::manual_failover: node {} is not a running replica", replica.port()));
  }
  const auto start = std::chrono::steady_clock::now();
  {
    redis::Endpoint endpoint;
    endpoint.port = replica.port();
    redis::Connection connection(endpoint, redis::Options{});
    connection.command({"CLUSTER", "FAILOVER"})
        .check(fmt::format("CLUSTER FAILOVER on replica {}", replica.port()));
  }
  const RedisServer* old_master = node_on_port(master_port);
  detail::wait_until(
      timeout,
      fmt::format("replica {} did not take over from master {}", replica.port(), master_port),
      [&](std::string& seen) {
        const std::string now = role(replica);
        if (now != "master") {
          seen = fmt::format("node {} says role {}", replica.port(), now.empty() ? "?" : now);
          return false;
        }
        int following = 0;
        if (old_master != nullptr && usable(*old_master) &&
            (role(*old_master, &following) != "slave" || following != replica.port())) {
          seen =
              fmt::format("old master {} does not replicate {} yet", master_port, replica.port());
          return false;
        }
        seen = promotion_not_seen(nodes_, replica.port());
        return seen.empty();
      });
  wait_until_ok(std::max(milliseconds(0), timeout - since(start)));
  return Failover{.promoted = &replica, .elapsed = since(start)};
}

}  // namespace prodsafe::embedded

namespace prodsafe::embedded {

void RedisCluster::wait_until_replica_of(const RedisServer& node, const RedisServer& master,
                                         milliseconds timeout) {
  detail::wait_until(
      timeout, fmt::format("node {} did not become a replica of {}", node.port(), master.port()),
      [&](std::string& seen) {
        int following = 0;
        std::string link;
        const std::string now = role(node, &following, &link);
        if (now != "slave" || following != master.port() || link != "connected") {
          seen = fmt::format("node {}: role {} of {} ({})", node.port(), now.empty() ? "?" : now,
                             following, link.empty() ? "?" : link);
          return false;
        }
        return true;
      });
}

}  // namespace prodsafe::embedded
