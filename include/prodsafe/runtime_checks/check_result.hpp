// One finding of the Redis production-safety validator, about one server or
// about a topology (Sentinel, Cluster) as a whole.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace prodsafe::runtime_checks {

// Ordered by severity: a comparison like `level >= Level::kError` works.
enum class Level { kOk = 0, kWarning = 1, kError = 2, kCritical = 3 };

// "OK", "WARNING", "ERROR", "CRITICAL".
[[nodiscard]] std::string_view to_string(Level level) noexcept;
// Case-insensitive "ok" / "warning" / "error" / "critical"; nullopt otherwise.
[[nodiscard]] std::optional<Level> parse_level(std::string_view text) noexcept;

struct CheckResult {
  std::string name{};  // "persistence", "eviction_policy", ...
  Level level = Level::kOk;
  std::string observed{};  // what the server reported, e.g. "appendonly=yes appendfsync=everysec"
  std::string expected{};  // what is safe, e.g. "appendfsync always"
  std::string message{};   // the risk, in one sentence
  std::string remediation{};  // a command or setting; empty when level is OK
  // Which server the result is about, in a Sentinel topology or a cluster
  // ("host:port"); empty for a one-server URL, and for the checks of a
  // topology as a whole (slot coverage, replicas).
  std::string node{};
  // That server's part: "master", "replica" or "sentinel" (what the topology
  // says it should be); empty when `node` is.
  std::string node_role{};
};

}  // namespace prodsafe::runtime_checks
