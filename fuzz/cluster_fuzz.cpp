// What a Redis Cluster node answers, read by the cluster building blocks
// (src/redis/cluster_topology.hpp, src/redis/command_keys.hpp): the fuzz
// bytes are RESP replies, as a node of another version, a damaged one or a
// proxy could send them (the seeds are real CLUSTER SHARDS, CLUSTER SLOTS,
// MOVED and ASK replies of Redis 7.0). Every parser returns a value or throws
// a prodsafe::Error, and a topology it returns never routes a slot to a node
// that is not a live master with a port.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "cluster_topology.hpp"
#include "command_keys.hpp"
#include "fuzz_support.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/slot.hpp"

namespace {

namespace detail = prodsafe::redis::detail;
using prodsafe::fuzz::require;

void check_topology(const detail::ClusterTopology& topology) {
  require(topology.slot_master.size() == static_cast<std::size_t>(prodsafe::redis::kClusterSlots),
          "slot_master does not have one entry per slot");
  for (const detail::ClusterNode& node : topology.nodes) {
    require(node.port >= 0 && node.port <= 65535, "a port out of range");
    require(node.tls_port >= 0 && node.tls_port <= 65535, "a TLS port out of range");
    if (node.master >= 0) {
      require(static_cast<std::size_t>(node.master) < topology.nodes.size(),
              "a replica's master index out of range");
      require(
          topology.nodes[static_cast<std::size_t>(node.master)].role == detail::NodeRole::kMaster,
          "a replica follows a node that is not a master");
    }
  }
  for (int slot = 0; slot < prodsafe::redis::kClusterSlots; ++slot) {
    const std::uint16_t index = topology.slot_master[static_cast<std::size_t>(slot)];
    if (index == detail::kUnassignedSlot) continue;
    require(index < topology.nodes.size(), "a slot's master index out of range");
    const detail::ClusterNode& master = topology.nodes[index];
    require(master.role == detail::NodeRole::kMaster, "a slot routed to a replica");
    require(master.health != detail::NodeHealth::kFailed, "a slot routed to a failed master");
    require(master.port > 0 || master.tls_port > 0, "a slot routed to a node without a port");
    require(topology.master_of(slot) == &master, "master_of() disagrees with slot_master");
  }
}

void check_redirect(std::string_view message) {
  try {
    const auto redirect = detail::parse_redirect(message);
    if (!redirect) return;
    require(redirect->slot >= 0 && redirect->slot < prodsafe::redis::kClusterSlots,
            "a redirect to a slot out of range", message);
    require(redirect->port >= 1 && redirect->port <= 65535, "a redirect to a port out of range",
            message);
  } catch (const prodsafe::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = prodsafe::fuzz::as_text(data, size);
  check_redirect(text);
  const std::vector<prodsafe::redis::Reply> replies = prodsafe::fuzz::RespReader(text).all();
  for (const prodsafe::redis::Reply& reply : replies) {
    try {
      check_topology(detail::parse_cluster_shards(reply));
    } catch (const prodsafe::Error&) {
    }
    try {
      check_topology(detail::parse_cluster_slots(reply));
    } catch (const prodsafe::Error&) {
    }
    if (reply.is_error()) check_redirect(reply.error_message());
    // An array of strings, read as a command's arguments.
    if (reply.type() != prodsafe::redis::Reply::Type::kArray) continue;
    std::vector<std::string_view> args;
    for (const prodsafe::redis::Reply& element : reply.array()) {
      if (element.type() == prodsafe::redis::Reply::Type::kString) args.push_back(element.str());
    }
    if (args.empty()) continue;
    try {
      const detail::CommandSlot slot = detail::command_slot(args);
      if (slot.kind == detail::SlotKind::kSlot) {
        require(slot.slot >= 0 && slot.slot < prodsafe::redis::kClusterSlots,
                "command_slot() out of range");
      }
      detail::command_keys(args).for_each_position(
          [&](std::uint32_t i) { require(i < args.size(), "a key position past the arguments"); });
    } catch (const prodsafe::Error&) {
    }
  }
  return 0;
}
