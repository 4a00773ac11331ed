#include "topology.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "checks.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/connection.hpp"
#include "prodsafe/redis/slot.hpp"

namespace prodsafe::runtime_checks {
namespace {

using redis::HostPort;
using redis::Reply;
using redis::detail::ClusterNode;
using redis::detail::NodeHealth;
using redis::detail::NodeRole;

CheckResult found(std::string name, Level level, std::string observed, std::string expected,
                  std::string message, std::string remediation, std::string node = {},
                  std::string node_role = {}) {
  return CheckResult{std::move(name),     level,
                     std::move(observed), std::move(expected),
                     std::move(message),  std::move(remediation),
                     std::move(node),     std::move(node_role)};
}

bool is_text(const Reply& reply) {
  return reply.type() == Reply::Type::kString || reply.type() == Reply::Type::kStatus;
}

// A RESP2 flat array of field, value pairs; fields of other types are skipped.
Fields fields_of(const Reply& reply) {
  Fields fields;
  if (reply.type() != Reply::Type::kArray) return fields;
  const auto& items = reply.array();
  for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
    if (is_text(items[i]) && is_text(items[i + 1])) fields[items[i].str()] = items[i + 1].str();
  }
  return fields;
}

std::string field(const Fields& fields, const std::string& name) {
  const auto at = fields.find(name);
  return at == fields.end() ? std::string() : at->second;
}

std::optional<HostPort> address_of(const Fields& fields) {
  const std::string host = field(fields, "ip");
  const std::string port = field(fields, "port");
  int number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (host.empty() || ec != std::errc() || end != port.data() + port.size() || number < 1 ||
      number > 65535) {
    return std::nullopt;
  }
  return HostPort{host, number};
}

// The master a sentinel names: the ip and port of a SENTINEL MASTER reply
// that has the flags every sentinel sends; nullopt for any other reply.
std::optional<HostPort> master_named(const SentinelView& view) {
  if (view.outcome != SentinelView::Outcome::kAnswered || !view.master.contains("flags")) {
    return std::nullopt;
  }
  return address_of(view.master);
}

// Sentinel flags: "master,s_down", "slave,disconnected", ...
bool has_flag(const Fields& fields, std::string_view flag) {
  const std::string flags = field(fields, "flags");
  std::string_view rest = flags;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    if (rest.substr(0, comma) == flag) return true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

bool seen_down(const Fields& fields) {
  return has_flag(fields, "s_down") || has_flag(fields, "o_down") ||
         has_flag(fields, "disconnected");
}

// "+OK 3 usable Sentinels. ..." -> 3; 0 when the text says no number.
int usable_sentinels(const std::string& reply) {
  const auto space = reply.find(' ');
  if (space == std::string::npos) return 0;
  int usable = 0;
  const char* begin = reply.data() + space + 1;
  (void)std::from_chars(begin, reply.data() + reply.size(), usable);
  return usable;
}

bool credentials_refused(const std::string& message) {
  return message.starts_with("NOAUTH") || message.starts_with("WRONGPASS") ||
         message.starts_with("NOPERM");
}

SentinelView ask_sentinel(const redis::Client& client, const HostPort& sentinel) {
  SentinelView view;
  view.sentinel = sentinel;
  const redis::Options& options = client.options();
  redis::Endpoint endpoint = client.endpoint().server(sentinel);
  endpoint.user.clear();
  endpoint.password.clear();
  endpoint.db = 0;
  redis::Options asking = options;
  asking.user = options.sentinel.user;
  asking.password = options.sentinel.password;
  const std::string& name = client.endpoint().master_name;
  try {
    redis::Connection connection(endpoint, asking);
    const Reply master = connection.command({"SENTINEL", "MASTER", name});
    if (master.is_error()) {
      const std::string& message = master.error_message();
      view.outcome = message.find("No such master") != std::string::npos
                         ? SentinelView::Outcome::kUnknownMaster
                         : SentinelView::Outcome::kRefused;
      view.problem = view.outcome == SentinelView::Outcome::kUnknownMaster
                         ? fmt::format("knows no master named '{}'", name)
                         : "refused SENTINEL MASTER: " + message;
      if (credentials_refused(message)) {
        view.problem +=
            " (the sentinels' credentials: PRODSAFE_SENTINEL_USER and "
            "PRODSAFE_SENTINEL_PASSWORD, or redis::Options::sentinel)";
      }
      return view;
    }
    view.master = fields_of(master);
    Reply replicas = connection.command({"SENTINEL", "REPLICAS", name});
    if (replicas.is_error()) {
      // Before Redis 5.0: SENTINEL SLAVES.
      Reply slaves = connection.command({"SENTINEL", "SLAVES", name});
      if (!slaves.is_error()) replicas = std::move(slaves);
    }
    if (replicas.type() == Reply::Type::kArray) {
      for (const Reply& replica : replicas.array()) view.replicas.push_back(fields_of(replica));
    } else {
      view.replicas_problem =
          replicas.is_error()
              ? "SENTINEL REPLICAS (and SLAVES) refused: " + replicas.error_message()
              : "SENTINEL REPLICAS answered " + replicas.debug_string();
    }
    const Reply quorum = connection.command({"SENTINEL", "CKQUORUM", name});
    view.quorum_ok = !quorum.is_error() && is_text(quorum) && quorum.str().starts_with("OK");
    view.quorum_reply = quorum.is_error() ? quorum.error_message()
                        : is_text(quorum) ? quorum.str()
                                          : quorum.debug_string();
    view.outcome = SentinelView::Outcome::kAnswered;
  } catch (const ReplyError& error) {
    view.outcome = SentinelView::Outcome::kRefused;
    view.problem = fmt::format(
        "{} (the sentinels' credentials: PRODSAFE_SENTINEL_USER and "
        "PRODSAFE_SENTINEL_PASSWORD, or redis::Options::sentinel)",
        error.what());
  } catch (const Error& error) {
    view.outcome = SentinelView::Outcome::kUnreachable;
    view.problem = error.what();
  }
  return view;
}

// The sentinel's checks, given the master most of them name.
void judge_sentinel(const SentinelView& view, const std::string& master_name,
                    const std::string& agreed, std::vector<CheckResult>& results) {
  const std::string node = view.sentinel.str();
  const std::string expected = "reachable, names the same master as the others, sees it up";
  if (view.outcome != SentinelView::Outcome::kAnswered) {
    results.push_back(found(
        "sentinel", Level::kError, view.problem, expected,
        fmt::format("This sentinel does not answer for '{}': it can neither vote for a failover "
                    "nor tell clients where the master is.",
                    master_name),
        view.outcome == SentinelView::Outcome::kUnknownMaster
            ? fmt::format("Add `sentinel monitor {} <host> <port> <quorum>` to its "
                          "configuration, or remove it from the URL",
                          master_name)
            : "Start it (or give it the credentials it expects), or remove it from the URL",
        node, "sentinel"));
    return;
  }
  const auto address = master_named(view);
  const std::string named = address ? address->str() : "an unreadable address";
  const std::string replicas = view.replicas_problem.empty()
                                   ? fmt::format("{} replicas", view.replicas.size())
                                   : std::string("replicas not listed");
  const std::string observed =
      fmt::format("names master {} ({}); {}, {} other sentinels", named,
                  field(view.master, "flags"), replicas, field(view.master, "num-other-sentinels"));
  if (!address) {
    results.push_back(found(
        "sentinel", Level::kError,
        fmt::format("SENTINEL MASTER {} has no readable ip, port and flags (ip '{}', port '{}', "
                    "flags '{}')",
                    master_name, field(view.master, "ip"), field(view.master, "port"),
                    field(view.master, "flags")),
        expected,
        "This server's answer about the master is not one a sentinel gives: it cannot tell "
        "clients where the master is, and its answer is not counted.",
        "Check that this address is a Redis Sentinel (INFO server: redis_mode:sentinel) and "
        "that nothing between it and this client rewrites replies",
        node, "sentinel"));
  } else if (has_flag(view.master, "o_down")) {
    results.push_back(found("sentinel", Level::kCritical, observed, expected,
                            "A quorum of sentinels sees the master down: claims fail until a "
                            "replica is promoted.",
                            "Check the master's host and log; if no failover follows, check "
                            "the sentinels' quorum",
                            node, "sentinel"));
  } else if (has_flag(view.master, "s_down")) {
    // This sentinel's own view: the master may be down, or only this
    // sentinel cut off from it (the others say which).
    results.push_back(found("sentinel", Level::kError, observed, expected,
                            "This sentinel sees the master down: the master is failing, or this "
                            "sentinel is cut off from it and cannot help decide a failover.",
                            "Check the master's host and log, and the network between this "
                            "sentinel and the master",
                            node, "sentinel"));
  } else if (named != agreed) {
    results.push_back(found(
        "sentinel", Level::kError, observed, expected,
        fmt::format("This sentinel names another master than the others ({}): a failover is "
                    "under way, or it is cut off from them, and clients that ask it connect to "
                    "the wrong node.",
                    agreed),
        "Run the checks again once the failover is over; if this stays, check the network "
        "between the sentinels (SENTINEL SENTINELS " +
            master_name + ")",
        node, "sentinel"));
  } else {
    results.push_back(found("sentinel", Level::kOk, observed, expected,
                            "This sentinel watches the master the others name.", "", node,
                            "sentinel"));
  }
  const std::string quorum_expected = "CKQUORUM OK with at least 3 usable sentinels";
  const std::string quorum_observed =
      fmt::format("quorum {}: {}", field(view.master, "quorum"), view.quorum_reply);
  if (!view.quorum_ok) {
    results.push_back(found(
        "sentinel_quorum", Level::kError, quorum_observed, quorum_expected,
        "The sentinels cannot agree on a failover: when the master fails, no replica is "
        "promoted and every claim fails until the master is back.",
        "Start the missing sentinels (at least 3, on separate machines), and check the quorum "
        "in `sentinel monitor " +
            master_name + " <host> <port> <quorum>`",
        node, "sentinel"));
  } else if (usable_sentinels(view.quorum_reply) < 3) {
    results.push_back(found("sentinel_quorum", Level::kWarning, quorum_observed, quorum_expected,
                            "Fewer than 3 sentinels: one more lost and no failover can be "
                            "authorized.",
                            "Run at least 3 sentinels, on separate machines", node, "sentinel"));
  } else {
    results.push_back(found("sentinel_quorum", Level::kOk, quorum_observed, quorum_expected,
                            "The sentinels can authorize a failover.", "", node, "sentinel"));
  }
}

}  // namespace

std::vector<SentinelView> ask_sentinels(const redis::Client& client) {
  std::vector<SentinelView> views;
  for (const HostPort& sentinel : client.endpoint().servers) {
    // A sentinel the URL lists twice is one voice, asked and reported once.
    const bool asked = std::any_of(views.begin(), views.end(), [&](const SentinelView& view) {
      return view.sentinel == sentinel;
    });
    if (!asked) views.push_back(ask_sentinel(client, sentinel));
  }
  return views;
}

TopologyFindings evaluate_sentinels(const std::vector<SentinelView>& views,
                                    const std::string& master_name) {
  std::size_t reached = 0;
  std::size_t unknown = 0;
  std::string problems;
  // How many sentinels that answered name each master.
  std::map<std::string, std::size_t> votes;
  const SentinelView* agreed = nullptr;
  std::size_t most = 0;
  for (const SentinelView& view : views) {
    if (view.outcome != SentinelView::Outcome::kUnreachable) ++reached;
    if (view.outcome == SentinelView::Outcome::kUnknownMaster) ++unknown;
    if (view.outcome != SentinelView::Outcome::kAnswered) {
      problems +=
          fmt::format("{}{}: {}", problems.empty() ? "" : "; ", view.sentinel.str(), view.problem);
      continue;
    }
    const auto address = master_named(view);
    if (!address) continue;
    const std::size_t count = ++votes[address->str()];
    if (count > most) most = count;
  }
  // The first sentinel to name a master that got the most votes.
  for (const SentinelView& view : views) {
    const auto address = master_named(view);
    if (address && votes[address->str()] == most) {
      agreed = &view;
      break;
    }
  }
  const auto answered = static_cast<std::size_t>(std::count_if(
      views.begin(), views.end(),
      [](const SentinelView& view) { return view.outcome == SentinelView::Outcome::kAnswered; }));
  if (reached == 0) {
    throw StoreUnavailable(
        fmt::format("none of the {} sentinels could be reached ({})", views.size(), problems));
  }
  if (answered == 0 && unknown < reached) {
    throw StoreUnavailable(
        fmt::format("no sentinel answered for master '{}' ({})", master_name, problems));
  }
  if (unknown == reached) {
    throw ConfigError(fmt::format(
        "no sentinel knows a master named '{}' ({}); check ?master= in the URL against the "
        "names in the sentinels' configuration (SENTINEL MASTERS)",
        master_name, problems));
  }

  TopologyFindings findings;
  const std::string agreed_address = agreed ? master_named(*agreed)->str() : std::string();
  for (const SentinelView& view : views)
    judge_sentinel(view, master_name, agreed_address, findings.results);
  if (agreed == nullptr) {
    findings.results.push_back(
        found("replicas", Level::kCritical, "no sentinel names a readable master address",
              ">= 1 replica in reach",
              "The sentinels that answered name no master that can be reached, so nothing can be "
              "checked further.",
              "Check SENTINEL MASTER " + master_name + " on each sentinel"));
    return findings;
  }
  findings.nodes.push_back({*master_named(*agreed), "master"});
  // The replicas as the first sentinel naming that master that could list
  // them lists them.
  const SentinelView* lister = nullptr;
  for (const SentinelView& view : views) {
    const auto address = master_named(view);
    if (view.replicas_problem.empty() && address && *address == findings.nodes.front().address) {
      lister = &view;
      break;
    }
  }
  if (lister == nullptr) {
    findings.results.push_back(found(
        "replicas", Level::kWarning,
        fmt::format("unknown: {} ({})", agreed->replicas_problem, agreed->sentinel.str()),
        ">= 1 replica in reach",
        "No sentinel listed the master's replicas, so whether one is in reach to be promoted, "
        "and their own checks, are unknown.",
        "Let the sentinels' user run SENTINEL REPLICAS (ACL: +sentinel|replicas), or check "
        "each replica with `prodsafe check redis://<replica>`"));
    return findings;
  }
  std::size_t listed = 0;
  std::size_t in_reach = 0;
  for (const Fields& replica : lister->replicas) {
    const auto address = address_of(replica);
    if (address) {
      // A replica listed twice, or at the master's address, is checked once.
      const bool known =
          std::any_of(findings.nodes.begin(), findings.nodes.end(),
                      [&](const TopologyNode& node) { return node.address == *address; });
      if (known) continue;
      findings.nodes.push_back({*address, "replica"});
      if (!seen_down(replica)) ++in_reach;
    }
    ++listed;
  }
  const std::string observed = fmt::format("{} of {} replicas in reach (as {} sees them)", in_reach,
                                           listed, lister->sentinel.str());
  if (in_reach == 0) {
    findings.results.push_back(found(
        "replicas", Level::kError, observed, ">= 1 replica in reach",
        "No replica in reach: Sentinel has none to promote, so when the master dies every claim "
        "fails until it is back, and a lost disk loses every record.",
        "Add a replica (`replicaof <master host> <port>` in its redis.conf), or bring the "
        "listed ones back"));
  } else {
    findings.results.push_back(found("replicas", Level::kOk, observed, ">= 1 replica in reach",
                                     "Sentinel has a replica to promote.", ""));
  }
  return findings;
}

ClusterView ask_cluster(const redis::Client& client) {
  redis::Options options = client.options();
  std::string problems;
  for (const HostPort& seed : client.endpoint().servers) {
    // A seed that cannot be reached, refuses, or sends a slot map that does
    // not parse is passed over for the next, as the client's router does.
    try {
      redis::Connection connection(client.endpoint().server(seed), options);
      const Reply shards = connection.command({"CLUSTER", "SHARDS"});
      if (!shards.is_error()) return {seed, redis::detail::parse_cluster_shards(shards)};
      // Before Redis 7.0: CLUSTER SLOTS.
      const Reply slots = connection.command({"CLUSTER", "SLOTS"});
      if (!slots.is_error()) return {seed, redis::detail::parse_cluster_slots(slots)};
      problems += fmt::format("{}{}: CLUSTER SLOTS: {}", problems.empty() ? "" : "; ", seed.str(),
                              slots.error_message());
    } catch (const Error& error) {
      problems += fmt::format("{}{}: {}", problems.empty() ? "" : "; ", seed.str(), error.what());
    }
  }
  throw StoreUnavailable(
      fmt::format("none of the cluster's {} seed nodes answered with a usable slot map ({})",
                  client.endpoint().servers.size(), problems));
}

TopologyFindings evaluate_cluster(const ClusterView& view, bool tls) {
  TopologyFindings findings;
  const auto& nodes = view.topology.nodes;
  const std::size_t assigned = view.topology.assigned_slots();
  const std::string coverage =
      fmt::format("{} of {} slots have a master", assigned, redis::kClusterSlots);
  if (assigned == static_cast<std::size_t>(redis::kClusterSlots)) {
    findings.results.push_back(found("slot_coverage", Level::kOk, coverage, "every slot served",
                                     "Every key has a master.", ""));
  } else {
    int first = 0;
    while (view.topology.master_of(first) != nullptr) ++first;
    findings.results.push_back(
        found("slot_coverage", Level::kCritical,
              fmt::format("{} (first without: {})", coverage, first), "every slot served",
              "Keys in slots without a master cannot be claimed (CLUSTERDOWN); with "
              "cluster-require-full-coverage yes, the whole cluster refuses commands.",
              fmt::format("Assign the slots, or fail their shard over: redis-cli --cluster fix "
                          "{}",
                          view.seed.str())));
  }
  std::vector<std::string> addresses(nodes.size());
  // The addresses of the nodes the cluster does not mark failed: a failed
  // entry at one of them (a node that came back with a new id, leaving its
  // old one behind) is not the server that answers there.
  std::set<std::string> live;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const ClusterNode& node = nodes[i];
    const int port = tls && node.tls_port != 0 ? node.tls_port : node.port;
    addresses[i] = HostPort{node.host.empty() ? view.seed.host : node.host, port}.str();
    if (node.health != NodeHealth::kFailed) live.insert(addresses[i]);
  }
  std::set<std::string> listed;  // the addresses in findings.nodes
  for (int pass = 0; pass < 2; ++pass) {
    const NodeRole role = pass == 0 ? NodeRole::kMaster : NodeRole::kReplica;
    const std::string role_name = pass == 0 ? "master" : "replica";
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const ClusterNode& node = nodes[i];
      if (node.role != role) continue;
      const int port = tls && node.tls_port != 0 ? node.tls_port : node.port;
      if (port == 0) {
        findings.results.push_back(found(
            "reachable", Level::kError, fmt::format("tls-port {}, no plain port", node.tls_port),
            "a port for this URL's transport",
            "This node listens on TLS only, so a plain client cannot reach it.",
            "Connect with rediss-cluster://", addresses[i], role_name));
      } else if ((node.health != NodeHealth::kFailed || !live.contains(addresses[i])) &&
                 listed.insert(addresses[i]).second) {
        findings.nodes.push_back(
            {HostPort{node.host.empty() ? view.seed.host : node.host, port}, role_name});
      }
      // Only "fail" is reported: Redis 7.0 calls a replica "loading" while
      // its gossiped replication offset is 0, which a new cluster without
      // writes shows for every replica; whether a replica is in sync is what
      // its own replication_link check says.
      if (node.health == NodeHealth::kFailed) {
        findings.results.push_back(found(
            "cluster_health", Level::kError,
            node.id.empty() ? std::string("marked failed")
                            : fmt::format("marked failed (node id {})", node.id),
            "not failed",
            "The cluster marks this node failed: it serves nothing, and its shard has one "
            "copy fewer.",
            "Restart it, or remove it (redis-cli --cluster del-node)", addresses[i], role_name));
      }
      if (role != NodeRole::kMaster || node.health == NodeHealth::kFailed) continue;
      std::size_t replicas = 0;
      for (const ClusterNode& other : nodes) {
        if (other.role == NodeRole::kReplica && other.master == static_cast<int>(i) &&
            other.health != NodeHealth::kFailed) {
          ++replicas;
        }
      }
      const bool serves_slots =
          std::find(view.topology.slot_master.begin(), view.topology.slot_master.end(), i) !=
          view.topology.slot_master.end();
      const std::string observed = fmt::format("{} replicas not failed", replicas);
      if (replicas == 0 && !serves_slots) {
        // Just added, or emptied by a rebalance: it holds no key to lose.
        findings.results.push_back(found("replicas", Level::kOk, observed + "; serves no slots",
                                         ">= 1 replica", "A master without slots holds nothing.",
                                         "", addresses[i], role_name));
      } else if (replicas == 0) {
        findings.results.push_back(
            found("replicas", Level::kError, observed, ">= 1 replica",
                  "No replica to promote: when this master fails its slots go down, and what it "
                  "held is lost with its disk.",
                  "Add a replica: redis-cli --cluster add-node <new host:port> " + addresses[i] +
                      " --cluster-slave",
                  addresses[i], role_name));
      } else {
        findings.results.push_back(found("replicas", Level::kOk, observed, ">= 1 replica",
                                         "The cluster has a replica to promote.", "", addresses[i],
                                         role_name));
      }
    }
  }
  return findings;
}

std::vector<CheckResult> group_by_node(std::vector<CheckResult> results) {
  std::map<std::string, std::size_t> rank{{"", 0}};
  for (const CheckResult& result : results) rank.emplace(result.node, rank.size());
  std::stable_sort(results.begin(), results.end(),
                   [&rank](const CheckResult& a, const CheckResult& b) {
                     return rank.at(a.node) < rank.at(b.node);
                   });
  return results;
}

std::vector<CheckResult> check_topology(const redis::Client& client,
                                        const ValidatorOptions& options) {
  const bool cluster = client.endpoint().topology == redis::Endpoint::Topology::kCluster;
  // TLS is on for rediss-cluster://, and for redis-cluster:// with
  // Options::tls.enabled (the CLI's --tls): either way, the TLS ports.
  const bool tls = client.endpoint().tls || client.options().tls.enabled;
  TopologyFindings findings =
      cluster ? evaluate_cluster(ask_cluster(client), tls)
              : evaluate_sentinels(ask_sentinels(client), client.endpoint().master_name);
  std::vector<CheckResult> results = std::move(findings.results);
  redis::Options node_options = client.options();
  node_options.pool_size = 1;
  for (const TopologyNode& node : findings.nodes) {
    const std::string name = node.address.str();
    std::vector<CheckResult> checked;
    try {
      redis::Client one(client.endpoint().server(node.address), node_options);
      checked = evaluate_node(collect_facts(one, options, cluster), options, node.role);
    } catch (const Error& error) {
      checked = {
          found("reachable", Level::kError, error.what(), "reachable",
                fmt::format("The topology lists this {} but it cannot be checked.", node.role),
                node.role == "replica" && !cluster
                    ? "Bring it back; if it was removed on purpose, run SENTINEL RESET "
                      "<master name> on each sentinel so they forget it"
                    : "Bring it back, or check the URL's credentials and TLS settings",
                name, node.role)};
    }
    for (CheckResult& result : checked) {
      result.node = name;
      result.node_role = node.role;
      results.push_back(std::move(result));
    }
  }
  return group_by_node(std::move(results));
}

}  // namespace prodsafe::runtime_checks
