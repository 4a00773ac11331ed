// A Redis Cluster's topology as a client routes by it: the nodes, and the
// master serving each of the 16384 hash slots; read from CLUSTER SHARDS
// (Redis >= 7.0) or CLUSTER SLOTS (older servers), plus the MOVED and ASK
// redirections a node answers with when a slot lives elsewhere.
//
// The parsers trust nothing: a reply of the wrong shape or type, a slot
// outside [0, 16384), ranges that overlap, a shard with slots but no master
// (or two live ones), a node listed as master and as replica, a port outside
// [1, 65535] (CLUSTER SHARDS may omit a port, or give 0: none; a master that
// serves slots needs one) throw ProtocolError naming what is wrong, so a
// garbage reply never assigns a slot to the wrong node. One limit no parser
// can lift: CLUSTER SLOTS tells master from replica by position alone, so a
// range that lost its master reads as one whose first replica is master.
//
// Hosts. A node's host is its `endpoint` (what the cluster prefers clients to
// use, per cluster-preferred-endpoint-type), else its `ip`. An endpoint that
// is empty, nil or "?" (unknown-endpoint, or a hostname that is not set)
// falls back to the ip; when there is none either, host is empty: connect to
// the host of the node that sent the reply, on the node's port.
//
// Health. CLUSTER SHARDS says whether each node is online, loading (a replica
// still syncing) or failed ("fail"; the documentation writes "failed": both
// are read). A failed master keeps its place in nodes, but routes no slot:
// its slots stay unassigned until the cluster promotes a replica. CLUSTER
// SLOTS says nothing of health: every node it lists counts as online.
//
// Thread safety: the functions are pure; a ClusterTopology is a plain value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "prodsafe/redis/reply.hpp"

namespace prodsafe::redis::detail {

enum class NodeRole : std::uint8_t { kMaster, kReplica };
enum class NodeHealth : std::uint8_t { kOnline, kLoading, kFailed };

struct ClusterNode {
  // The node's 40-character id; empty when the reply gave none (CLUSTER SLOTS
  // of a server before Redis 4.0).
  std::string id;
  // Where to connect (see "Hosts" above); empty: the host that replied.
  std::string host;
  // The node's IP address, as the cluster knows it (may be empty). From
  // CLUSTER SLOTS: the "ip" metadata, else the endpoint (which Redis sends as
  // the ip whenever it lists no "ip" metadata).
  std::string ip;
  // The hostname announced with cluster-announce-hostname; often empty.
  std::string hostname;
  // The plain TCP port, 0 when the node has none (TLS only).
  int port = 0;
  // The TLS port, 0 when the node has none or the reply does not say
  // (CLUSTER SLOTS gives one port, in `port`: the one matching the
  // connection the reply came on).
  int tls_port = 0;
  NodeRole role = NodeRole::kMaster;
  NodeHealth health = NodeHealth::kOnline;
  // For a replica, the index in ClusterTopology::nodes of its master, when
  // the reply says; -1 otherwise.
  int master = -1;

  friend bool operator==(const ClusterNode&, const ClusterNode&) = default;
};

// ClusterTopology::slot_master's value for a slot no usable master serves.
inline constexpr std::uint16_t kUnassignedSlot = 0xFFFF;

struct ClusterTopology {
  // Every node the reply lists, masters and replicas, failed ones included,
  // each once (by id, or by host and port when there is no id): shard by
  // shard (range by range for CLUSTER SLOTS), the master that routes the
  // shard's slots first, then the others in the reply's order.
  std::vector<ClusterNode> nodes;
  // For each slot, the index in `nodes` of its master, or kUnassignedSlot.
  // kClusterSlots entries.
  std::vector<std::uint16_t> slot_master;

  // The master serving `slot`, nullptr when none does or `slot` is outside
  // [0, kClusterSlots).
  [[nodiscard]] const ClusterNode* master_of(int slot) const noexcept;
  // How many slots have a master.
  [[nodiscard]] std::size_t assigned_slots() const noexcept;
};

// Parses the reply to CLUSTER SHARDS (RESP2: each shard a flat array of
// field, value: "slots" [start, end, ...] and "nodes" [each node a flat array
// of id, port, tls-port, ip, endpoint, hostname, role, replication-offset,
// health]). Unknown fields are ignored. A shard's slots go to its master:
// the one node with role "master" that is not failed; when its only masters
// are failed, its slots stay unassigned. Throws ProtocolError for any reply
// that breaks these rules (see the header comment).
[[nodiscard]] ClusterTopology parse_cluster_shards(const Reply& reply);

// Parses the reply to CLUSTER SLOTS: an array of [start, end, master,
// replica...], each node [endpoint, port, id, {ip, hostname}] (the id and the
// metadata only from Redis 4.0 and 7.0 on). Throws ProtocolError as
// parse_cluster_shards().
[[nodiscard]] ClusterTopology parse_cluster_slots(const Reply& reply);

enum class RedirectKind : std::uint8_t {
  kMoved,  // the slot lives on another node: send there, and refresh the topology
  kAsk,    // the slot is migrating: send ASKING, then the command, to that node, once
};

struct Redirect {
  RedirectKind kind = RedirectKind::kMoved;
  int slot = 0;
  // The node to ask; empty when the server gave no endpoint ("MOVED 3999
  // :6381", or "?:6381" for a hostname it does not know): the host of the
  // node that replied. An IPv6 address comes without brackets ("::1").
  std::string host;
  int port = 0;

  friend bool operator==(const Redirect&, const Redirect&) = default;
};

// Reads "MOVED <slot> <endpoint>:<port>" or "ASK <slot> <endpoint>:<port>"
// (the message of an error reply; the port is after the last ':', so IPv6
// addresses need no brackets; "[::1]:7000" is read too). nullopt for any other
// error. Throws ProtocolError for a MOVED or ASK that does not have this
// shape, a slot outside [0, 16384) or a port outside [1, 65535].
[[nodiscard]] std::optional<Redirect> parse_redirect(std::string_view error_message);

}  // namespace prodsafe::redis::detail
