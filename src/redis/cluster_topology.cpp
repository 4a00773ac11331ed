#include "cluster_topology.hpp"

#include <array>
#include <charconv>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/slot.hpp"

namespace prodsafe::redis::detail {
namespace {

[[noreturn]] void malformed(std::string_view command, std::string_view what) {
  throw ProtocolError(fmt::format(
      "{}: the reply is malformed ({}); refusing it rather than routing commands by it: check "
      "that the server is a Redis Cluster node and that nothing between it and this client "
      "rewrites replies",
      command, what));
}

std::string_view type_name(const Reply& reply) { return to_string(reply.type()); }

// Enough of a reply's text to recognise it in a message, never a whole blob.
std::string shown(std::string_view text) {
  constexpr std::size_t kMaxShown = 64;
  if (text.size() <= kMaxShown) return std::string(text);
  return fmt::format("{}... ({} bytes)", text.substr(0, kMaxShown), text.size());
}

const std::vector<Reply>& array_of(std::string_view command, const Reply& reply,
                                   std::string_view what) {
  if (reply.type() != Reply::Type::kArray) {
    malformed(command, fmt::format("{} is {}, not an array", what, type_name(reply)));
  }
  return reply.array();
}

const std::string& string_of(std::string_view command, const Reply& reply, std::string_view what) {
  if (reply.type() != Reply::Type::kString && reply.type() != Reply::Type::kStatus) {
    malformed(command, fmt::format("{} is {}, not a string", what, type_name(reply)));
  }
  return reply.str();
}

long long integer_of(std::string_view command, const Reply& reply, std::string_view what) {
  if (reply.type() != Reply::Type::kInteger) {
    malformed(command, fmt::format("{} is {}, not an integer", what, type_name(reply)));
  }
  return reply.integer();
}

int slot_of(std::string_view command, const Reply& reply, std::string_view what) {
  const long long slot = integer_of(command, reply, what);
  if (slot < 0 || slot >= kClusterSlots) {
    malformed(command, fmt::format("{} is slot {}, outside [0, {})", what, slot, kClusterSlots));
  }
  return static_cast<int>(slot);
}

// A port field: 0 means none (CLUSTER SHARDS leaves a missing port out; 0 is
// read the same), anything outside [0, 65535] is garbage.
int port_of(std::string_view command, const Reply& reply, std::string_view what) {
  const long long port = integer_of(command, reply, what);
  if (port < 0 || port > 65535) {
    malformed(command, fmt::format("{} is {}, outside [1, 65535]", what, port));
  }
  return static_cast<int>(port);
}

// The usable part of an endpoint or ip: "" and "?" say nothing.
std::string_view usable(std::string_view address) { return address == "?" ? "" : address; }

std::string choose_host(std::string_view endpoint, std::string_view ip) {
  if (!usable(endpoint).empty()) return std::string(endpoint);
  return std::string(usable(ip));
}

std::string describe(const ClusterNode& node) {
  const std::string address = fmt::format("{}:{}", node.host.empty() ? "?" : shown(node.host),
                                          node.port != 0 ? node.port : node.tls_port);
  return node.id.empty() ? address : fmt::format("{} ({})", shown(node.id), address);
}

// Collects nodes (each once) and slot ranges (each slot once), then hands out
// the topology.
class TopologyBuilder {
 public:
  explicit TopologyBuilder(std::string_view command)
      : command_(command), claimed_(kClusterSlots, false) {
    topology_.slot_master.assign(kClusterSlots, kUnassignedSlot);
  }

  // The index of `node` in the topology, adding it when it is new. A node
  // listed twice must be listed alike.
  int add_node(ClusterNode node) {
    // By id; by host and port (with a byte no id contains) when there is none.
    const std::string identity =
        !node.id.empty() ? node.id : fmt::format("\n{}\n{}", node.host, node.port);
    const auto found = index_.find(identity);
    if (found != index_.end()) {
      ClusterNode& known = topology_.nodes[static_cast<std::size_t>(found->second)];
      if (known.role != node.role) {
        malformed(command_, fmt::format("node {} is listed both as a master and as a replica",
                                        describe(node)));
      }
      if (node.master != -1 && known.master != -1 && node.master != known.master) {
        malformed(command_, fmt::format("replica {} is listed under two masters", describe(node)));
      }
      if (known.master == -1) known.master = node.master;
      return found->second;
    }
    // kUnassignedSlot must stay distinct from every index.
    if (topology_.nodes.size() >= kUnassignedSlot) {
      malformed(command_, fmt::format("more than {} nodes", kUnassignedSlot));
    }
    topology_.nodes.push_back(std::move(node));
    const int index = static_cast<int>(topology_.nodes.size() - 1);
    index_.emplace(identity, index);
    return index;
  }

  [[nodiscard]] const ClusterNode& node(int index) const {
    return topology_.nodes[static_cast<std::size_t>(index)];
  }

  // Slots start..end (inclusive) belong to the master at index `master`, or
  // to nobody for routing when master is -1 (a failed master); either way no
  // other range may claim them.
  void assign(int start, int end, int master) {
    if (start > end) {
      malformed(command_, fmt::format("slot range {}-{} ends before it starts", start, end));
    }
    for (int slot = start; slot <= end; ++slot) {
      const auto index = static_cast<std::size_t>(slot);
      if (claimed_[index]) {
        malformed(command_,
                  fmt::format("slot {} (in range {}-{}) is claimed twice", slot, start, end));
      }
      claimed_[index] = true;
      if (master >= 0) topology_.slot_master[index] = static_cast<std::uint16_t>(master);
    }
  }

  ClusterTopology finish() && { return std::move(topology_); }

 private:
  std::string_view command_;
  std::vector<bool> claimed_;
  ClusterTopology topology_;
  std::unordered_map<std::string, int> index_;  // identity (see add_node) -> index in nodes
};

// The port a master that routes slots must have.
void require_port(std::string_view command, const ClusterNode& master) {
  if (master.port == 0 && master.tls_port == 0) {
    malformed(command, fmt::format("master {} serves slots but has no port", describe(master)));
  }
}

// ---- CLUSTER SHARDS ----

constexpr std::string_view kShards = "CLUSTER SHARDS";

// Calls f(field, value) for each pair of a RESP2 map (a flat array).
template <typename F>
void for_each_field(const Reply& map, std::string_view what, F&& f) {
  const std::vector<Reply>& items = array_of(kShards, map, what);
  if (items.size() % 2 != 0) {
    malformed(kShards,
              fmt::format("{} has {} elements, not field-value pairs", what, items.size()));
  }
  for (std::size_t i = 0; i < items.size(); i += 2) {
    const std::string& field =
        string_of(kShards, items[i], fmt::format("a field name of {}", what));
    f(std::string_view(field), items[i + 1]);
  }
}

// Refuses a field the map already had (only the fields read are tracked:
// duplicates of unknown ones change nothing).
void once(bool& seen, std::string_view field, std::string_view what) {
  if (seen) malformed(kShards, fmt::format("{} has the field '{}' twice", what, field));
  seen = true;
}

ClusterNode shard_node(const Reply& reply, std::string_view what) {
  ClusterNode node;
  // Which of id, port, tls-port, ip, endpoint, hostname, role, health were read.
  std::array<bool, 8> seen{};
  std::string endpoint;
  for_each_field(reply, what, [&](std::string_view field, const Reply& value) {
    const auto context = [&] { return fmt::format("'{}' of {}", field, what); };
    if (field == "id") {
      once(seen[0], field, what);
      node.id = string_of(kShards, value, context());
    } else if (field == "port") {
      once(seen[1], field, what);
      node.port = port_of(kShards, value, context());
    } else if (field == "tls-port") {
      once(seen[2], field, what);
      node.tls_port = port_of(kShards, value, context());
    } else if (field == "ip") {
      once(seen[3], field, what);
      node.ip = string_of(kShards, value, context());
    } else if (field == "endpoint") {
      once(seen[4], field, what);
      endpoint = string_of(kShards, value, context());
    } else if (field == "hostname") {
      once(seen[5], field, what);
      node.hostname = string_of(kShards, value, context());
    } else if (field == "role") {
      once(seen[6], field, what);
      const std::string& role = string_of(kShards, value, context());
      if (role == "master") {
        node.role = NodeRole::kMaster;
      } else if (role == "replica" || role == "slave") {
        node.role = NodeRole::kReplica;
      } else {
        malformed(kShards,
                  fmt::format("{} is '{}', neither master nor replica", context(), shown(role)));
      }
    } else if (field == "health") {
      once(seen[7], field, what);
      const std::string& health = string_of(kShards, value, context());
      // Any other value counts as online: a master is routed to unless the
      // cluster says it failed.
      if (health == "fail" || health == "failed") {
        node.health = NodeHealth::kFailed;
      } else if (health == "loading") {
        node.health = NodeHealth::kLoading;
      }
    }
  });
  if (node.id.empty()) malformed(kShards, fmt::format("{} has no id", what));
  if (!seen[6]) malformed(kShards, fmt::format("{} has no role", what));
  node.host = choose_host(endpoint, node.ip);
  return node;
}

void add_shard(TopologyBuilder& builder, const Reply& shard, std::size_t number) {
  const std::string what = fmt::format("shard {}", number);
  const Reply* slots = nullptr;
  const Reply* nodes = nullptr;
  bool seen_slots = false;
  bool seen_nodes = false;
  for_each_field(shard, what, [&](std::string_view field, const Reply& value) {
    if (field == "slots") {
      once(seen_slots, field, what);
      slots = &value;
    } else if (field == "nodes") {
      once(seen_nodes, field, what);
      nodes = &value;
    }
  });
  if (slots == nullptr) malformed(kShards, fmt::format("{} has no 'slots'", what));
  if (nodes == nullptr) malformed(kShards, fmt::format("{} has no 'nodes'", what));

  const std::vector<Reply>& bounds = array_of(kShards, *slots, fmt::format("'slots' of {}", what));
  if (bounds.size() % 2 != 0) {
    malformed(kShards, fmt::format("'slots' of {} has {} elements, not start-end pairs", what,
                                   bounds.size()));
  }
  std::vector<std::pair<int, int>> ranges;
  for (std::size_t i = 0; i < bounds.size(); i += 2) {
    const std::string context = fmt::format("a slot bound of {}", what);
    ranges.emplace_back(slot_of(kShards, bounds[i], context),
                        slot_of(kShards, bounds[i + 1], context));
  }

  const std::vector<Reply>& listed = array_of(kShards, *nodes, fmt::format("'nodes' of {}", what));
  std::vector<ClusterNode> members;
  members.reserve(listed.size());
  for (std::size_t i = 0; i < listed.size(); ++i) {
    members.push_back(shard_node(listed[i], fmt::format("node {} of {}", i, what)));
  }

  // The master that routes: the one that has not failed.
  const ClusterNode* master = nullptr;
  bool any_master = false;
  for (const ClusterNode& member : members) {
    if (member.role != NodeRole::kMaster) continue;
    any_master = true;
    if (member.health == NodeHealth::kFailed) continue;
    if (master != nullptr) {
      malformed(kShards, fmt::format("{} has two masters that have not failed, {} and {}", what,
                                     describe(*master), describe(member)));
    }
    master = &member;
  }
  if (!ranges.empty() && !any_master) {
    malformed(kShards, fmt::format("{} serves slots but lists no master", what));
  }
  int master_index = -1;
  if (master != nullptr) {
    if (!ranges.empty()) require_port(kShards, *master);
    master_index = builder.add_node(*master);
  }
  for (ClusterNode& member : members) {
    if (&member == master) continue;
    if (member.role == NodeRole::kReplica) member.master = master_index;
    (void)builder.add_node(std::move(member));
  }
  for (const auto& [start, end] : ranges) builder.assign(start, end, master_index);
}

// ---- CLUSTER SLOTS ----

constexpr std::string_view kSlots = "CLUSTER SLOTS";

ClusterNode slots_node(const Reply& reply, std::string_view what, NodeRole role, int master) {
  const std::vector<Reply>& fields = array_of(kSlots, reply, what);
  if (fields.size() < 2) {
    malformed(kSlots, fmt::format("{} has {} elements, not at least endpoint and port", what,
                                  fields.size()));
  }
  ClusterNode node;
  node.role = role;
  node.master = master;
  std::string endpoint;
  if (!fields[0].is_nil())
    endpoint = string_of(kSlots, fields[0], fmt::format("the endpoint of {}", what));
  node.port = port_of(kSlots, fields[1], fmt::format("the port of {}", what));
  if (node.port == 0) malformed(kSlots, fmt::format("the port of {} is 0", what));
  if (fields.size() >= 3) node.id = string_of(kSlots, fields[2], fmt::format("the id of {}", what));
  if (fields.size() >= 4) {
    // Redis 7.0: a map of further endpoints ("ip", "hostname").
    const std::string context = fmt::format("the metadata of {}", what);
    const std::vector<Reply>& metadata = array_of(kSlots, fields[3], context);
    if (metadata.size() % 2 != 0) {
      malformed(kSlots,
                fmt::format("{} has {} elements, not field-value pairs", context, metadata.size()));
    }
    for (std::size_t i = 0; i < metadata.size(); i += 2) {
      const std::string& field = string_of(kSlots, metadata[i], context);
      if (field == "ip") node.ip = string_of(kSlots, metadata[i + 1], context);
      if (field == "hostname") node.hostname = string_of(kSlots, metadata[i + 1], context);
    }
  }
  // Redis 7 lists the ip among the metadata whenever the endpoint is not the
  // ip; older servers always send the ip as the endpoint.
  if (node.ip.empty()) node.ip = std::string(usable(endpoint));
  node.host = choose_host(endpoint, node.ip);
  return node;
}

}  // namespace

const ClusterNode* ClusterTopology::master_of(int slot) const noexcept {
  if (slot < 0 || slot >= kClusterSlots || slot_master.size() != kClusterSlots) return nullptr;
  const std::uint16_t index = slot_master[static_cast<std::size_t>(slot)];
  if (index == kUnassignedSlot || index >= nodes.size()) return nullptr;
  return &nodes[index];
}

std::size_t ClusterTopology::assigned_slots() const noexcept {
  std::size_t count = 0;
  for (const std::uint16_t index : slot_master) count += index != kUnassignedSlot ? 1 : 0;
  return count;
}

ClusterTopology parse_cluster_shards(const Reply& reply) {
  const std::vector<Reply>& shards = array_of(kShards, reply, "the reply");
  TopologyBuilder builder(kShards);
  for (std::size_t i = 0; i < shards.size(); ++i) add_shard(builder, shards[i], i);
  return std::move(builder).finish();
}

ClusterTopology parse_cluster_slots(const Reply& reply) {
  const std::vector<Reply>& entries = array_of(kSlots, reply, "the reply");
  TopologyBuilder builder(kSlots);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string what = fmt::format("range {}", i);
    const std::vector<Reply>& entry = array_of(kSlots, entries[i], what);
    if (entry.size() < 3) {
      malformed(kSlots, fmt::format("{} has {} elements, not at least start, end and master", what,
                                    entry.size()));
    }
    const int start = slot_of(kSlots, entry[0], fmt::format("the start of {}", what));
    const int end = slot_of(kSlots, entry[1], fmt::format("the end of {}", what));
    const int master = builder.add_node(
        slots_node(entry[2], fmt::format("the master of {}", what), NodeRole::kMaster, -1));
    for (std::size_t r = 3; r < entry.size(); ++r) {
      (void)builder.add_node(slots_node(entry[r], fmt::format("replica {} of {}", r - 3, what),
                                        NodeRole::kReplica, master));
    }
    builder.assign(start, end, master);
  }
  return std::move(builder).finish();
}

std::optional<Redirect> parse_redirect(std::string_view message) {
  Redirect redirect;
  std::string_view rest;
  if (message.starts_with("MOVED ")) {
    redirect.kind = RedirectKind::kMoved;
    rest = message.substr(6);
  } else if (message.starts_with("ASK ")) {
    redirect.kind = RedirectKind::kAsk;
    rest = message.substr(4);
  } else {
    return std::nullopt;
  }
  const auto bad = [&](std::string_view why) -> ProtocolError {
    constexpr std::size_t kMaxShown = 128;
    return ProtocolError(fmt::format(
        "Redis answered a malformed redirection '{}' ({}); expected '{} <slot> <host>:<port>'",
        message.substr(0, kMaxShown), why,
        redirect.kind == RedirectKind::kMoved ? "MOVED" : "ASK"));
  };
  const std::size_t space = rest.find(' ');
  if (space == std::string_view::npos) throw bad("no address");
  const std::string_view slot_text = rest.substr(0, space);
  const std::string_view address = rest.substr(space + 1);
  if (address.empty() || address.find(' ') != std::string_view::npos) {
    throw bad("not three words");
  }
  int slot = -1;
  const auto [slot_end, slot_error] =
      std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), slot);
  if (slot_error != std::errc() || slot_end != slot_text.data() + slot_text.size() ||
      slot_text.empty() || slot < 0 || slot >= kClusterSlots) {
    throw bad("the slot is not a number in [0, 16384)");
  }
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) throw bad("no ':' before the port");
  const std::string_view port_text = address.substr(colon + 1);
  int port = 0;
  const auto [port_end, port_error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_error != std::errc() || port_end != port_text.data() + port_text.size() ||
      port_text.empty() || port < 1 || port > 65535) {
    throw bad("the port is not a number in [1, 65535]");
  }
  std::string_view host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  redirect.slot = slot;
  redirect.host = std::string(usable(host));
  redirect.port = port;
  return redirect;
}

}  // namespace prodsafe::redis::detail
