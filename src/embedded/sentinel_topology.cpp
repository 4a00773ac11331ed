#include "prodsafe/embedded/sentinel_topology.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "config_text.hpp"
#include "node_probe.hpp"
#include "prodsafe/core/error.hpp"

namespace prodsafe::embedded {
namespace {

using std::chrono::milliseconds;

bool valid_master_name(const std::string& name) {
  if (name.empty()) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

void check_options(const SentinelTopologyOptions& options) {
  if (!valid_master_name(options.master_name)) {
    throw InvalidArgument(fmt::format(
        "SentinelTopologyOptions::master_name '{}' must be letters, digits, '-', '_' or '.'",
        options.master_name));
  }
  if (options.replicas < 1 || options.replicas > 2) {
    throw InvalidArgument(
        fmt::format("SentinelTopologyOptions::replicas must be 1 or 2, got {}", options.replicas));
  }
  if (options.sentinels < 1 || options.sentinels > 7) {
    throw InvalidArgument(fmt::format("SentinelTopologyOptions::sentinels must be 1 to 7, got {}",
                                      options.sentinels));
  }
  if (options.quorum < 0 || options.quorum > options.sentinels) {
    throw InvalidArgument(
        fmt::format("SentinelTopologyOptions::quorum must be 0 (a majority) to sentinels ({}), "
                    "got {}",
                    options.sentinels, options.quorum));
  }
  if (options.down_after < milliseconds(100)) {
    throw InvalidArgument("SentinelTopologyOptions::down_after must be at least 100 ms");
  }
  if (options.failover_timeout < milliseconds(1000)) {
    throw InvalidArgument("SentinelTopologyOptions::failover_timeout must be at least 1000 ms");
  }
}

bool usable(const RedisServer& server) { return server.running() && !server.paused(); }

}  // namespace

SentinelTopology::SentinelTopology(SentinelTopologyOptions options) : options_(std::move(options)) {
  check_options(options_);
  // The data nodes first, in sync before any sentinel looks: a sentinel's
  // first INFO of the master then lists every replica.
  std::vector<std::string> config = data_node_config();
  nodes_.push_back(std::make_unique<RedisServer>(
      RedisServerOptions{.config = config,
                         .executable = options_.executable,
                         .keep_directory = options_.keep_directories}));
  const int master = nodes_.front()->port();
  config.push_back(fmt::format("replicaof 127.0.0.1 {}", master));
  for (int i = 0; i < options_.replicas; ++i) {
    nodes_.push_back(std::make_unique<RedisServer>(
        RedisServerOptions{.config = config,
                           .executable = options_.executable,
                           .keep_directory = options_.keep_directories}));
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.startup_timeout;
  const auto left = [&] {
    return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(
                                         deadline - std::chrono::steady_clock::now()));
  };
  detail::wait_until(left(), "the replicas did not sync with the master", [&](std::string& seen) {
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
      seen = replica_problem(*nodes_[i], master);
      if (!seen.empty()) return false;
    }
    return true;
  });
  start_sentinels();
  wait_until_settled(left());
}

SentinelTopology::~SentinelTopology() = default;

std::vector<std::string> SentinelTopology::data_node_config() const {
  std::vector<std::string> config{
      "replica-announce-ip 127.0.0.1",
      // Redis waits 5 s by default before a diskless full sync, for more
      // replicas to join it; ours are all there.
      "repl-diskless-sync-delay 0",
  };
  if (!options_.password.empty()) {
    config.push_back("requirepass " + detail::conf_quoted(options_.password));
    config.push_back("masterauth " + detail::conf_quoted(options_.password));
  }
  config.insert(config.end(), options_.config.begin(), options_.config.end());
  return config;
}

void SentinelTopology::start_sentinels() {
  const std::string& name = options_.master_name;
  const int quorum = options_.quorum > 0 ? options_.quorum : options_.sentinels / 2 + 1;
  std::vector<std::string> config{
      fmt::format("sentinel monitor {} 127.0.0.1 {} {}", name, nodes_.front()->port(), quorum),
      fmt::format("sentinel down-after-milliseconds {} {}", name, options_.down_after.count()),
      fmt::format("sentinel failover-timeout {} {}", name, options_.failover_timeout.count()),
      fmt::format("sentinel parallel-syncs {} 1", name),
  };
  if (!options_.password.empty()) {
    config.push_back(
        fmt::format("sentinel auth-pass {} {}", name, detail::conf_quoted(options_.password)));
  }
  if (!options_.sentinel_password.empty()) {
    config.push_back("requirepass " + detail::conf_quoted(options_.sentinel_password));
  }
  for (int i = 0; i < options_.sentinels; ++i) {
    sentinels_.push_back(std::make_unique<RedisServer>(
        RedisServerOptions{.config = config,
                           .executable = options_.executable,
                           .keep_directory = options_.keep_directories,
                           .sentinel = true}));
    if (!options_.quick_timers) continue;
    std::string error;
    if (!detail::query(sentinels_.back()->port(), options_.sentinel_password,
                       {"SENTINEL", "DEBUG", "info-period", "1000", "publish-period", "500",
                        "ping-period", "250", "tilt-period", "5000"},
                       error)) {
      throw StoreUnavailable("cannot shorten the sentinel's timers (SENTINEL DEBUG): " + error +
                             "; set SentinelTopologyOptions::quick_timers = false");
    }
  }
}

std::vector<std::string> SentinelTopology::sentinel_endpoints() const {
  std::vector<std::string> out;
  for (const auto& sentinel : sentinels_)
    out.push_back(fmt::format("127.0.0.1:{}", sentinel->port()));
  return out;
}

namespace {

// ":<password>@" for a URL (percent-encoded), or "" without a password.
// fmt, not operator+: GCC 12 at -O3 warns (-Wrestrict) on ":" + string&&.
std::string url_credentials(const std::string& password) {
  return password.empty() ? std::string() : fmt::format(":{}@", detail::percent_encoded(password));
}

}  // namespace

std::string SentinelTopology::url() const {
  std::string hosts;
  for (const std::string& endpoint : sentinel_endpoints()) {
    hosts += (hosts.empty() ? "" : ",") + endpoint;
  }
  // The URL's credentials are the master's (redis::Client's rule); the
  // sentinels' password goes in redis::Options::sentinel.password.
  return fmt::format("redis-sentinel://{}{}/0?master={}", url_credentials(options_.password), hosts,
                     options_.master_name);
}

std::string SentinelTopology::node_url(const RedisServer& node) const {
  return fmt::format("redis://{}127.0.0.1:{}", url_credentials(options_.password), node.port());
}

RedisServer& SentinelTopology::node(std::size_t index) {
  if (index >= nodes_.size()) {
    throw InvalidArgument(
        fmt::format("SentinelTopology::node({}): there are {} data nodes", index, nodes_.size()));
  }
  return *nodes_[index];
}

RedisServer* SentinelTopology::node_on_port(int port) noexcept {
  for (const auto& node : nodes_) {
    if (node->port() == port) return node.get();
  }
  return nullptr;
}

RedisServer& SentinelTopology::sentinel(std::size_t index) {
  if (index >= sentinels_.size()) {
    throw InvalidArgument(fmt::format("SentinelTopology::sentinel({}): there are {} sentinels",
                                      index, sentinels_.size()));
  }
  return *sentinels_[index];
}

namespace {

// The port a sentinel names for `name`, or 0 with `error` set.
int named_master(const RedisServer& sentinel, const std::string& password, const std::string& name,
                 std::string& error) {
  const std::optional<redis::Reply> reply = detail::query(
      sentinel.port(), password, {"SENTINEL", "get-master-addr-by-name", name}, error);
  if (!reply) return 0;
  if (reply->type() != redis::Reply::Type::kArray || reply->array().size() != 2) {
    error = fmt::format("sentinel {} answered get-master-addr-by-name with {}", sentinel.port(),
                        reply->debug_string());
    return 0;
  }
  try {
    return std::stoi(reply->array()[1].str());
  } catch (const std::exception&) {
    error =
        fmt::format("sentinel {} named port {}", sentinel.port(), reply->array()[1].debug_string());
    return 0;
  }
}

}  // namespace

int SentinelTopology::master_port() const {
  std::string failures;
  for (const auto& sentinel : sentinels_) {
    if (!usable(*sentinel)) {
      failures += fmt::format("; sentinel {} is {}", sentinel->port(),
                              sentinel->running() ? "paused" : "not running");
      continue;
    }
    std::string error;
    const int port = named_master(*sentinel, options_.sentinel_password, master_name(), error);
    if (port > 0) return port;
    failures += "; " + error;
  }
  throw StoreUnavailable(
      fmt::format("no sentinel named the master '{}'{}", master_name(), failures));
}

RedisServer& SentinelTopology::master() {
  const int port = master_port();
  RedisServer* node = node_on_port(port);
  if (node == nullptr) {
    throw ProtocolError(fmt::format(
        "the sentinels name 127.0.0.1:{} as master '{}', which is not one of the topology's "
        "data nodes",
        port, master_name()));
  }
  return *node;
}

std::string SentinelTopology::sentinels_disagree(int master_port) const {
  for (const auto& sentinel : sentinels_) {
    if (!usable(*sentinel)) continue;
    std::string error;
    const int port = named_master(*sentinel, options_.sentinel_password, master_name(), error);
    if (port == 0) return error;
    if (port != master_port) {
      return fmt::format("sentinel {} names master port {}, not {}", sentinel->port(), port,
                         master_port);
    }
  }
  return {};
}

std::string SentinelTopology::replica_problem(const RedisServer& node, int master_port) const {
  if (!usable(node)) {
    return fmt::format("node {} is {}", node.port(), node.running() ? "paused" : "not running");
  }
  std::string error;
  const std::optional<redis::Info> info =
      detail::query_info(node.port(), options_.password, "replication", error);
  if (!info) return error;
  const std::string role = info->get("role").value_or("?");
  const std::string following = info->get("master_port").value_or("?");
  const std::string link = info->get("master_link_status").value_or("?");
  if (role != "slave" || following != std::to_string(master_port) || link != "up") {
    return fmt::format(
        "node {}: role:{} master_port:{} master_link_status:{} (want a replica of {})", node.port(),
        role, following, link, master_port);
  }
  // Only once the sentinels saw it is the replica a candidate for the next
  // failover.
  if (sentinels_.empty()) return {};
  for (const auto& sentinel : sentinels_) {
    if (!usable(*sentinel)) continue;
    const std::optional<redis::Reply> replicas =
        detail::query(sentinel->port(), options_.sentinel_password,
                      {"SENTINEL", "replicas", master_name()}, error);
    if (!replicas) return error;
    std::string entry_seen = "not listed";
    for (const redis::Reply& entry : replicas->array()) {
      std::map<std::string, std::string> entry_fields = detail::fields(entry);
      if (entry_fields["port"] != std::to_string(node.port())) continue;
      if (entry_fields["flags"] == "slave" &&
          entry_fields["master-port"] == std::to_string(master_port)) {
        entry_seen.clear();
      } else {
        entry_seen = fmt::format("flags {} master-port {}", entry_fields["flags"],
                                 entry_fields["master-port"]);
      }
      break;
    }
    if (!entry_seen.empty()) {
      return fmt::format("sentinel {} lists replica {}: {}", sentinel->port(), node.port(),
                         entry_seen);
    }
  }
  return {};
}

std::string SentinelTopology::unsettled() const {
  for (const auto& sentinel : sentinels_) {
    if (!usable(*sentinel)) {
      return fmt::format("sentinel {} is {}", sentinel->port(),
                         sentinel->running() ? "paused" : "not running");
    }
  }
  std::string error;
  const int port =
      named_master(*sentinels_.front(), options_.sentinel_password, master_name(), error);
  if (port == 0) return error;
  const RedisServer* master = nullptr;
  for (const auto& node : nodes_) {
    if (node->port() == port) master = node.get();
  }
  if (master == nullptr) return fmt::format("the sentinels name port {}, not a data node", port);
  if (std::string problem = sentinels_disagree(port); !problem.empty()) return problem;
  if (!usable(*master)) return fmt::format("master {} is not running", port);
  const std::optional<redis::Info> info =
      detail::query_info(port, options_.password, "replication", error);
  if (!info) return error;
  if (info->get("role") != "master") {
    return fmt::format("master {} says role:{}", port, info->get("role").value_or("?"));
  }
  for (const auto& node : nodes_) {
    if (node.get() == master) continue;
    if (std::string problem = replica_problem(*node, port); !problem.empty()) return problem;
  }
  for (const auto& sentinel : sentinels_) {
    const std::optional<redis::Reply> others =
        detail::query(sentinel->port(), options_.sentinel_password,
                      {"SENTINEL", "sentinels", master_name()}, error);
    if (!others) return error;
    std::size_t healthy = 0;
    for (const redis::Reply& entry : others->array()) {
      if (detail::fields(entry)["flags"] == "sentinel") ++healthy;
    }
    if (healthy != sentinels_.size() - 1) {
      return fmt::format("sentinel {} sees {} of the {} other sentinels", sentinel->port(), healthy,
                         sentinels_.size() - 1);
    }
  }
  return {};
}

void SentinelTopology::wait_until_settled(milliseconds timeout) {
  detail::wait_until(timeout, "the Sentinel topology did not settle", [&](std::string& seen) {
    seen = unsettled();
    return seen.empty();
  });
}

RedisServer& SentinelTopology::wait_for_failover(const RedisServer& old_master,
                                                 milliseconds timeout) {
  RedisServer* promoted = nullptr;
  detail::wait_until(
      timeout, fmt::format("the sentinels did not fail over from master {}", old_master.port()),
      [&](std::string& seen) {
        int agreed = 0;
        for (const auto& sentinel : sentinels_) {
          if (!usable(*sentinel)) continue;
          std::string error;
          const int port =
              named_master(*sentinel, options_.sentinel_password, master_name(), error);
          if (port == 0) {
            seen = error;
            return false;
          }
          if (agreed != 0 && port != agreed) {
            seen = fmt::format("sentinels name both {} and {}", agreed, port);
            return false;
          }
          agreed = port;
        }
        if (agreed == 0) {
          seen = "no sentinel is running";
          return false;
        }
        if (agreed == old_master.port()) {
          seen = fmt::format("the sentinels still name {}", agreed);
          return false;
        }
        promoted = node_on_port(agreed);
        if (promoted == nullptr) {
          seen = fmt::format("the sentinels name port {}, not a data node", agreed);
          return false;
        }
        std::string error;
        const std::optional<redis::Info> info =
            detail::query_info(agreed, options_.password, "replication", error);
        if (!info) {
          seen = error;
          return false;
        }
        if (info->get("role") != "master") {
          seen = fmt::format("the sentinels name {}, which says role:{}", agreed,
                             info->get("role").value_or("?"));
          return false;
        }
        return true;
      });
  return *promoted;
}

void SentinelTopology::wait_until_replica_of(const RedisServer& node, const RedisServer& master,
                                             milliseconds timeout) {
  detail::wait_until(
      timeout,
      fmt::format("node {} did not come back as a replica of {}", node.port(), master.port()),
      [&](std::string& seen) {
        seen = sentinels_disagree(master.port());
        if (seen.empty()) seen = replica_problem(node, master.port());
        return seen.empty();
      });
}

}  // namespace prodsafe::embedded
