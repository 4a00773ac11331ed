// Checks that a Redis server is configured so that prodsafe's records are
// neither lost nor evicted (the seed's RedisRuntimeValidator): persistence and
// its health, eviction policy, memory headroom, role, version, loading state
// and round-trip latency.
//
// It reads INFO first and CONFIG GET only where allowed, so it works where
// CONFIG is renamed or disabled (AWS ElastiCache, Google Memorystore): what it
// cannot verify becomes a WARNING that says so, never an exception, and its
// advice then names redis.conf or the provider's console, never CONFIG SET.
// Persistence is rated by what a crash loses, so the default fail level
// (ERROR) fails every setup that loses acknowledged claims when redis-server
// is killed, or many seconds of them when the machine crashes.
//
//   RedisRuntimeValidator validator(client);
//   if (!validator.validate_on_startup()) { /* refuse to start, or alert */ }
//
// Topologies. For a redis-sentinel:// client it asks every sentinel in the
// URL (with Options::sentinel's credentials) for SENTINEL MASTER, REPLICAS
// and CKQUORUM: each sentinel's view (reachable, names the master the others
// name, sees it up) and quorum are checked, and how many replicas are in
// reach. For a redis-cluster:// client it reads the slot map from the first
// seed that answers with one (a garbled one is passed over): slot coverage,
// and a replica for each master. Then every master and replica named is
// checked like a single server (the role the topology gives it,
// persistence, eviction, memory, ...), plus
// min-replicas-to-write on masters, the replication link on replicas and
// cluster_state on cluster nodes. Each result carries its node
// (CheckResult::node); a node that cannot be reached is an ERROR result
// ("reachable"), not an exception. docs/operations.md lists the checks.
//
// Thread safety: not safe for concurrent use of one validator (run() stores
// its results); the client it uses is.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "prodsafe/redis/client.hpp"
#include "prodsafe/runtime_checks/check_result.hpp"

namespace prodsafe::metrics {
class Registry;
}

namespace prodsafe::runtime_checks {

struct ValidatorOptions {
  // Treat appendfsync everysec (up to 1 s of acknowledged claims lost when
  // the machine crashes) as an ERROR, which fails the default gate, instead
  // of a WARNING. Default: false. (Persistence levels: docs/operations.md.)
  bool strict_durability = false;
  // Memory headroom: the free share of maxmemory, else of the memory
  // redis-server may use (its cgroup's limit when it runs on this machine and
  // has a lower one, else INFO's total_system_memory), below which each level
  // applies.
  // Defaults: 0.20, 0.10, 0.05.
  double memory_warning_free = 0.20;
  double memory_error_free = 0.10;
  double memory_critical_free = 0.05;
  // PINGs timed for the latency check. Default: 20. 0 skips the check.
  std::size_t latency_samples = 20;
  // p99 round trip above which the latency check warns. Default: 10 ms.
  std::chrono::microseconds latency_p99_warning{10000};
  // Where each run's results go: prodsafe_runtime_checks{level} and
  // prodsafe_runtime_check_level{check} (docs/metrics.md; for a topology,
  // the worst level of the check over its nodes; 0 for a check an earlier
  // run had and the last did not, such as "reachable" once every node
  // answers again). Default: nullptr,
  // metrics::default_registry(). Must outlive the validator.
  metrics::Registry* metrics = nullptr;
};

struct Summary {
  std::size_t total_checks = 0;
  std::size_t ok = 0;
  std::size_t warning = 0;
  std::size_t error = 0;
  std::size_t critical = 0;
};

class RedisRuntimeValidator {
 public:
  // Throws InvalidArgument when `client` is null or the thresholds are not
  // 0 <= critical <= error <= warning <= 1.
  explicit RedisRuntimeValidator(std::shared_ptr<redis::Client> client,
                                 ValidatorOptions options = {});

  // Runs every check and returns every result, OK ones included. Throws
  // StoreUnavailable (or Timeout) only when the server cannot be reached at
  // all (for a topology: no sentinel answers, or no seed node), ReplyError
  // when even INFO is refused, ConfigError when no sentinel knows the URL's
  // master name.
  std::vector<CheckResult> run();

  // Runs the checks, logs each result (OK at info level, WARNING at warn,
  // ERROR at error, CRITICAL at critical) and returns false when any result is
  // at or above `fail_at`, or when Redis cannot be reached. Never throws.
  bool validate_on_startup(Level fail_at = Level::kError);

  // Counts of the last run() (runs the checks first if there was none).
  Summary get_summary();
  // The results of the last run().
  [[nodiscard]] const std::vector<CheckResult>& results() const noexcept { return results_; }

 private:
  void publish(const std::vector<CheckResult>& results);

  std::shared_ptr<redis::Client> client_;
  ValidatorOptions options_;
  std::vector<CheckResult> results_;
  bool ran_ = false;
  // The checks publish() has set a prodsafe_runtime_check_level series for.
  std::set<std::string> published_;
};

// Counts results by level.
[[nodiscard]] Summary summarize(const std::vector<CheckResult>& results);
// The most severe level among `results` (kOk when empty).
[[nodiscard]] Level worst_level(const std::vector<CheckResult>& results);

}  // namespace prodsafe::runtime_checks
