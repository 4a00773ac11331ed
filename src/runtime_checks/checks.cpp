#include "checks.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::runtime_checks {
namespace {

using std::chrono::microseconds;

const char* const kConfigParameters[] = {"appendfsync", "save", "min-replicas-to-write",
                                         "min-replicas-max-lag"};

CheckResult result(std::string name, Level level, std::string observed, std::string expected,
                   std::string message, std::string remediation = {}) {
  return CheckResult{std::move(name),     level,
                     std::move(observed), std::move(expected),
                     std::move(message),  std::move(remediation)};
}

std::optional<std::string> config_value(const ServerFacts& facts, const std::string& name) {
  if (!facts.config) return std::nullopt;
  const auto found = facts.config->find(name);
  if (found == facts.config->end()) return std::nullopt;
  return found->second;
}

std::string unverifiable_reason(const ServerFacts& facts) {
  return facts.config_error.empty() ? "CONFIG GET is not available"
                                    : "CONFIG GET is not available (" + facts.config_error + ")";
}

// How to change settings on this server. CONFIG SET only where CONFIG GET
// answered: where CONFIG is renamed, disabled or denied to this user, CONFIG
// SET fails too, and the settings are changed in redis.conf or, on a managed
// service, in the provider's console (ElastiCache parameter groups,
// Memorystore configuration).
std::string change(const ServerFacts& facts, const std::vector<std::string>& settings) {
  std::string listed;
  for (std::size_t i = 0; i < settings.size(); ++i) {
    if (i > 0) listed += i + 1 == settings.size() ? " and " : ", ";
    listed += "`" + settings[i] + "`";
  }
  if (!facts.config) {
    return fmt::format(
        "Set {} in redis.conf and restart, or in your provider's console (CONFIG is not "
        "available to this client)",
        listed);
  }
  std::string commands;
  for (const std::string& setting : settings) commands += "CONFIG SET " + setting + "; ";
  return fmt::format("{}and set {} in redis.conf so a restart keeps {}", commands, listed,
                     settings.size() == 1 ? "it" : "them");
}

std::string percent(double share) { return fmt::format("{:.1f}%", share * 100); }

std::string bytes(long long count) {
  if (count >= (1LL << 30))
    return fmt::format("{:.1f} GiB", static_cast<double>(count) / (1LL << 30));
  if (count >= (1LL << 20))
    return fmt::format("{:.1f} MiB", static_cast<double>(count) / (1LL << 20));
  return fmt::format("{} KiB", count / 1024);
}

}  // namespace

ServerFacts collect_facts(redis::Client& client, const ValidatorOptions& options,
                          bool cluster_node) {
  ServerFacts facts;
  facts.info = redis::parse_info(client.info("everything"));
  redis::Pipeline pipeline;
  for (const char* name : kConfigParameters) pipeline.add({"CONFIG", "GET", name});
  std::map<std::string, std::string> config;
  for (const redis::Reply& reply : client.pipeline(pipeline)) {
    if (reply.is_error()) {
      facts.config_error = reply.error_message();
      break;
    }
    const auto& pair = reply.array();
    for (std::size_t i = 0; i + 1 < pair.size(); i += 2) config[pair[i].str()] = pair[i + 1].str();
  }
  if (facts.config_error.empty()) facts.config = std::move(config);
  if (cluster_node)
    facts.cluster_info = redis::parse_info(client.command({"CLUSTER", "INFO"}).str());

  if (const auto pid = local_redis_pid("/", facts.info, client.endpoint())) {
    facts.redis_is_local = true;
    facts.cgroup_memory = cgroup_memory_limit("/", *pid);
  }

  for (std::size_t i = 0; i < options.latency_samples; ++i) {
    const auto start = std::chrono::steady_clock::now();
    client.ping();
    facts.latency.push_back(
        std::chrono::duration_cast<microseconds>(std::chrono::steady_clock::now() - start));
  }
  return facts;
}

// Rated by what a crash loses (docs/operations.md): a lost claim lets its
// effect run again, so every setup that loses acknowledged claims when
// redis-server is killed is CRITICAL, one that loses many seconds on a
// machine crash is an ERROR, and everysec's last second is a WARNING (an
// ERROR with strict_durability). The default fail level, ERROR, fails all but
// the last.
CheckResult check_persistence(const ServerFacts& facts, const ValidatorOptions& options) {
  const std::string name = "persistence";
  const std::string expected = "appendonly yes, appendfsync always";
  const std::string fix = change(facts, {"appendonly yes", "appendfsync always"});
  const auto aof = facts.info.number("aof_enabled");
  if (!aof) {
    return result(name, Level::kWarning, "aof_enabled not in INFO", expected,
                  "Cannot tell whether the server persists writes, so effect records may not "
                  "survive a restart.",
                  fix);
  }
  if (*aof != 1) {
    // INFO says the AOF is off: whatever `save` says, acknowledged claims die
    // with the process (all of them, or all since the last snapshot).
    const auto save = config_value(facts, "save");
    if (!save) {
      return result(name, Level::kCritical, "appendonly=no save=unknown", expected,
                    fmt::format("AOF is off: when redis-server crashes or restarts, every claim "
                                "acknowledged since the last RDB snapshot, if it takes any, is "
                                "lost, and those effects run again. The snapshot schedule cannot "
                                "be read: {}.",
                                unverifiable_reason(facts)),
                    fix);
    }
    const std::string observed = fmt::format("appendonly=no save=\"{}\"", *save);
    if (!save->empty()) {
      return result(name, Level::kCritical, observed, expected,
                    "Only RDB snapshots: when redis-server crashes or restarts, every claim "
                    "acknowledged since the last snapshot is lost (up to the snapshot interval), "
                    "and those effects run again.",
                    fix);
    }
    return result(
        name, Level::kCritical, observed, expected,
        "No persistence: a restart loses every effect record, so every effect can run again.", fix);
  }
  const auto fsync = config_value(facts, "appendfsync");
  if (!fsync) {
    return result(name, Level::kWarning, "appendonly=yes appendfsync=unknown", expected,
                  fmt::format("AOF is on but its fsync policy cannot be verified ({}): with "
                              "everysec or no, a machine crash loses recent claims.",
                              unverifiable_reason(facts)),
                  "Check that appendfsync is always in redis.conf or your provider's console, "
                  "or allow CONFIG GET for this user");
  }
  const std::string observed = "appendonly=yes appendfsync=" + *fsync;
  if (*fsync == "always") {
    return result(name, Level::kOk, observed, expected,
                  "Every acknowledged write is fsynced before the reply.");
  }
  const std::string fsync_fix = change(facts, {"appendfsync always"});
  if (*fsync == "everysec") {
    return result(name, options.strict_durability ? Level::kError : Level::kWarning, observed,
                  expected,
                  "Writes are fsynced once a second: a killed redis-server loses nothing, but a "
                  "machine crash or power loss loses up to 1 s of acknowledged claims (2 s when "
                  "fsync stalls), and those effects run again.",
                  fsync_fix);
  }
  return result(name, Level::kError, observed, expected,
                fmt::format("appendfsync {}: the operating system decides when the AOF reaches "
                            "disk (Linux: within about 30 s), so a machine crash or power loss "
                            "loses up to 30 s of acknowledged claims, and those effects run again.",
                            *fsync),
                fsync_fix);
}

CheckResult check_persistence_health(const ServerFacts& facts) {
  const std::string name = "persistence_health";
  const std::string rdb = facts.info.get("rdb_last_bgsave_status").value_or("unknown");
  const std::string aof = facts.info.get("aof_last_write_status").value_or("unknown");
  const std::string observed =
      fmt::format("rdb_last_bgsave_status={} aof_last_write_status={}", rdb, aof);
  if (rdb == "err" || aof == "err") {
    return result(
        name, Level::kCritical, observed, "both ok",
        "The last persistence write failed, so records acknowledged since may not be on disk.",
        "Check the server log and disk space (INFO persistence); fix, then BGSAVE or BGREWRITEAOF");
  }
  return result(name, Level::kOk, observed, "both ok",
                "The last snapshot and AOF write succeeded.");
}

CheckResult check_eviction_policy(const ServerFacts& facts) {
  const std::string name = "eviction_policy";
  const std::string expected = "noeviction, or no maxmemory limit";
  const std::string fix = change(facts, {"maxmemory-policy noeviction"});
  const std::string policy = facts.info.get("maxmemory_policy").value_or("");
  const long long limit = facts.info.number("maxmemory").value_or(-1);
  const std::string observed =
      fmt::format("maxmemory_policy={} maxmemory={}", policy.empty() ? "\"\"" : policy,
                  limit < 0 ? std::string("unknown") : std::to_string(limit));
  if (policy.empty()) {
    return result(name, Level::kWarning, observed, expected,
                  "The eviction policy is not reported, so effect records may be evicted under "
                  "memory pressure.",
                  "Ask your provider for maxmemory-policy noeviction, or check it in its console");
  }
  if (policy == "noeviction") {
    return result(name, Level::kOk, observed, expected,
                  "Redis refuses writes rather than evicting keys.");
  }
  if (limit == 0) {
    return result(
        name, Level::kOk, observed, expected,
        "No maxmemory limit, so the policy never evicts (the memory check watches the machine).");
  }
  if (policy.starts_with("allkeys-")) {
    return result(name, Level::kCritical, observed, expected,
                  "Any key may be evicted under memory pressure, effect records included, and an "
                  "evicted record lets its effect run again.",
                  fix);
  }
  if (policy.starts_with("volatile-")) {
    return result(
        name, Level::kError, observed, expected,
        "Keys with a TTL are evicted under memory pressure, and every effect record carries one.",
        fix);
  }
  return result(name, Level::kWarning, observed, expected,
                fmt::format("Unknown eviction policy '{}': effect records may be evicted.", policy),
                fix);
}

// Against maxmemory when set (Redis enforces it), else against the memory the
// process may use: INFO's total_system_memory is the machine's even inside a
// container, so the limit of Redis's cgroup replaces it when it is known
// (Redis on this machine) and smaller.
CheckResult check_memory_headroom(const ServerFacts& facts, const ValidatorOptions& options) {
  const std::string name = "memory_headroom";
  const std::string expected = fmt::format(">= {} free", percent(options.memory_warning_free));
  const auto used = facts.info.number("used_memory");
  const long long maxmemory = facts.info.number("maxmemory").value_or(0);
  const long long system = facts.info.number("total_system_memory").value_or(0);
  const bool cgroup =
      maxmemory <= 0 && facts.cgroup_memory && (system <= 0 || facts.cgroup_memory->bytes < system);
  const long long limit = maxmemory > 0 ? maxmemory : cgroup ? facts.cgroup_memory->bytes : system;
  // A negative used_memory (a broken server) is no measurement; it would also
  // overflow limit - used.
  if (!used || *used < 0 || limit <= 0) {
    return result(
        name, Level::kWarning, "used_memory or the limit not in INFO", expected,
        "Memory headroom cannot be verified, so running out of memory would go unnoticed.",
        "Watch used_memory against your instance's memory in your provider's console");
  }
  // (limit - used) / limit, not 1 - used / limit: exact at the band edges.
  const double free = static_cast<double>(limit - *used) / static_cast<double>(limit);
  std::string of = "system memory; a container limit is not visible";
  if (maxmemory > 0) {
    of = "maxmemory";
  } else if (cgroup) {
    of = "cgroup limit " + facts.cgroup_memory->source;
  } else if (facts.redis_is_local) {
    of = "system memory; redis-server's cgroup sets no lower limit";
  }
  const std::string observed = fmt::format("{} used of {} ({}) = {} free", bytes(*used),
                                           bytes(limit), of, percent(std::max(0.0, free)));
  // Without maxmemory, nothing stops Redis before the kernel's OOM killer, and
  // INFO cannot show a container's limit: say what was measured.
  const std::string unseen =
      cgroup || facts.redis_is_local
          ? ""
          : " (INFO's total_system_memory is the machine's: a memory limit on Redis's container "
            "is not visible from here)";
  std::string fix;
  std::string risk;
  if (maxmemory > 0) {
    fix = change(facts, {"maxmemory <larger bytes>"}) + ", or delete data you do not need";
    risk = "When maxmemory is reached, writes fail (noeviction) or records are evicted.";
  } else {
    fix = change(facts, {"maxmemory <bytes below the machine's or container's memory>",
                         "maxmemory-policy noeviction"}) +
          "; or give the server more memory";
    risk = (cgroup ? "When the cgroup limit is reached, the kernel kills redis-server"
                   : "When the machine runs out of memory, the kernel can kill redis-server") +
           std::string(", and every claim it had not persisted is lost.") + unseen;
  }
  if (free < options.memory_critical_free)
    return result(name, Level::kCritical, observed, expected, risk, fix);
  if (free < options.memory_error_free)
    return result(name, Level::kError, observed, expected, risk, fix);
  if (free < options.memory_warning_free)
    return result(name, Level::kWarning, observed, expected, risk, fix);
  return result(name, Level::kOk, observed, expected,
                maxmemory > 0 ? std::string("Enough memory is free.")
                              : "Enough memory is free" + unseen + ".");
}

CheckResult check_role(const ServerFacts& facts) {
  const std::string role = facts.info.get("role").value_or("unknown");
  if (role == "master") {
    return result("role", Level::kOk, "role=master", "role=master", "Writes go to the primary.");
  }
  if (role == "slave" || role == "replica") {
    const std::string primary = fmt::format("{}:{}", facts.info.get("master_host").value_or("?"),
                                            facts.info.get("master_port").value_or("?"));
    return result("role", Level::kCritical, "role=replica of " + primary, "role=master",
                  "This is a replica: claims fail (read-only) or read stale records, so effects "
                  "can run twice.",
                  "Point prodsafe at the primary (" + primary + ")");
  }
  return result("role", Level::kWarning, "role=" + role, "role=master",
                "The server's role is not reported, so it may be a read-only replica.",
                "Point prodsafe at the primary");
}

CheckResult check_version(const ServerFacts& facts) {
  const std::string version = facts.info.get("redis_version").value_or("");
  int major = 0;
  int minor = 0;
  if (version.empty() || std::sscanf(version.c_str(), "%d.%d", &major, &minor) != 2) {
    return result(
        "version", Level::kWarning, "redis_version unknown", ">= 7.0",
        "The server's version is not reported, so scripts may not behave as prodsafe needs.",
        "Run Redis 7.0 or later");
  }
  if (major > 7 || (major == 7 && minor >= 0)) {
    return result("version", Level::kOk, "redis_version=" + version, ">= 7.0",
                  "A supported version.");
  }
  return result(
      "version", Level::kError, "redis_version=" + version, ">= 7.0",
      "Before 7.0, scripts that read TIME are replicated verbatim rather than by effects, so "
      "leases on replicas and in the AOF may differ from the primary's.",
      "Upgrade to Redis 7.0 or later");
}

CheckResult check_loading(const ServerFacts& facts) {
  const auto loading = facts.info.number("loading");
  if (loading && *loading == 0) {
    return result("loading", Level::kOk, "loading=0", "loading=0", "The dataset is loaded.");
  }
  return result(
      "loading", Level::kWarning, loading ? "loading=1" : "loading unknown", "loading=0",
      "The server is loading its dataset; until it finishes, every claim fails with LOADING.",
      "Wait for loading to finish (INFO persistence: loading:0), then run the checks again");
}

CheckResult check_latency(const ServerFacts& facts, const ValidatorOptions& options) {
  std::vector<microseconds> samples = facts.latency;
  std::sort(samples.begin(), samples.end());
  const std::size_t index = std::min(samples.size() - 1, (samples.size() * 99 + 99) / 100 - 1);
  const microseconds p99 = samples[index];
  const std::string observed = fmt::format("p99 {} us over {} PINGs", p99.count(), samples.size());
  const std::string expected = fmt::format("p99 <= {} us", options.latency_p99_warning.count());
  if (p99 > options.latency_p99_warning) {
    return result(
        "latency", Level::kWarning, observed, expected,
        "Slow round trips make every claim and commit slow and make timeouts more likely.",
        "Move prodsafe closer to Redis, or raise command_timeout and lease to match");
  }
  return result("latency", Level::kOk, observed, expected, "Round trips are fast.");
}

std::vector<CheckResult> evaluate(const ServerFacts& facts, const ValidatorOptions& options) {
  std::vector<CheckResult> results{check_persistence(facts, options),
                                   check_persistence_health(facts),
                                   check_eviction_policy(facts),
                                   check_memory_headroom(facts, options),
                                   check_role(facts),
                                   check_version(facts),
                                   check_loading(facts)};
  if (!facts.latency.empty()) results.push_back(check_latency(facts, options));
  return results;
}

namespace {

std::string primary_of(const ServerFacts& facts) {
  return fmt::format("{}:{}", facts.info.get("master_host").value_or("?"),
                     facts.info.get("master_port").value_or("?"));
}

bool is_replica(const std::string& role) { return role == "slave" || role == "replica"; }

}  // namespace

CheckResult check_topology_role(const ServerFacts& facts, std::string_view expected_role) {
  const std::string role = facts.info.get("role").value_or("unknown");
  const std::string expected = fmt::format("role={}", expected_role);
  if (expected_role == "master") {
    if (role == "master") {
      return result("role", Level::kOk, "role=master", expected, "Writes go to this master.");
    }
    if (is_replica(role)) {
      return result(
          "role", Level::kCritical, "role=replica of " + primary_of(facts), expected,
          "The topology names this node a master, but it is a replica: a failover is under way "
          "or the topology's view is stale, and claims sent here fail (READONLY).",
          "Run the checks again once the failover is over; if this stays, compare SENTINEL "
          "MASTER (or CLUSTER NODES) with INFO replication on this node");
    }
  } else {
    if (is_replica(role)) {
      return result("role", Level::kOk, "role=replica of " + primary_of(facts), expected,
                    "A replica, ready to be promoted.");
    }
    if (role == "master") {
      return result("role", Level::kError, "role=master", expected,
                    "A second master: the topology counts this node as a replica, yet it takes "
                    "writes, and whatever it takes is discarded when it is demoted.",
                    "Make it a replica of the master (REPLICAOF host port), or let Sentinel "
                    "reconfigure it (SENTINEL RESET on each sentinel)");
    }
  }
  return result("role", Level::kWarning, "role=" + role, expected,
                "The server's role is not reported, so it may not be what the topology says.",
                "Check INFO replication on this node");
}

CheckResult check_min_replicas(const ServerFacts& facts) {
  const std::string name = "min_replicas";
  const std::string expected = "min-replicas-to-write >= 1, min-replicas-max-lag > 0";
  const std::string fix = change(facts, {"min-replicas-to-write 1", "min-replicas-max-lag 10"});
  // INFO shows min_slaves_good_slaves only when both settings are non-zero.
  const auto good = facts.info.number("min_slaves_good_slaves");
  const auto wanted = config_value(facts, "min-replicas-to-write");
  const auto lag = config_value(facts, "min-replicas-max-lag");
  if (!good) {
    std::string observed = "min-replicas-to-write off";
    if (wanted && lag) {
      observed = fmt::format("min-replicas-to-write={} min-replicas-max-lag={}", *wanted, *lag);
    }
    return result(name, Level::kWarning, observed, expected,
                  "A master cut off from its replicas (paused, or partitioned from them and the "
                  "sentinels) keeps acknowledging claims that the failover then discards, so "
                  "those effects can run twice (docs/guarantees.md measures it).",
                  fix);
  }
  long long needed = 1;
  if (wanted) (void)std::from_chars(wanted->data(), wanted->data() + wanted->size(), needed);
  const std::string observed =
      wanted ? fmt::format("min-replicas-to-write={} min-replicas-max-lag={}: {} good replicas",
                           *wanted, lag.value_or("?"), *good)
             : fmt::format("min-replicas-to-write on: {} good replicas", *good);
  if (*good < needed) {
    return result(name, Level::kCritical, observed, expected,
                  "Too few replicas are in reach and up to date: the master refuses every write "
                  "(NOREPLICAS), so every claim fails.",
                  "Bring the replicas back (check their master_link_status), or lower "
                  "min-replicas-to-write");
  }
  return result(name, Level::kOk, observed, expected,
                "A master cut off from its replicas stops taking writes within the lag.");
}

CheckResult check_replication_link(const ServerFacts& facts) {
  const std::string name = "replication_link";
  const std::string link = facts.info.get("master_link_status").value_or("unknown");
  const auto syncing = facts.info.number("master_sync_in_progress").value_or(0);
  const std::string observed = fmt::format("master_link_status={} (master {}){}", link,
                                           primary_of(facts), syncing == 1 ? ", syncing" : "");
  if (link == "up") {
    return result(name, Level::kOk, observed, "master_link_status=up",
                  "The replica receives the master's writes.");
  }
  return result(
      name, syncing == 1 ? Level::kWarning : Level::kError, observed, "master_link_status=up",
      "The replica is not receiving the master's writes: promoted now, it would lose "
      "every claim made since its link broke, and those effects would run again.",
      "Check the replica's log (MASTER <-> REPLICA sync) and the network to " + primary_of(facts));
}

CheckResult check_cluster_state(const ServerFacts& facts) {
  const std::string name = "cluster_state";
  const std::string state =
      facts.cluster_info ? facts.cluster_info->get("cluster_state").value_or("unknown") : "unknown";
  const std::string observed = fmt::format(
      "cluster_state={} cluster_slots_ok={}", state,
      facts.cluster_info ? facts.cluster_info->get("cluster_slots_ok").value_or("?") : "?");
  if (state == "ok") {
    return result(name, Level::kOk, observed, "cluster_state=ok", "This node serves its slots.");
  }
  if (state == "fail") {
    return result(name, Level::kCritical, observed, "cluster_state=ok",
                  "This node refuses commands (CLUSTERDOWN): a slot has no master, or the node is "
                  "cut off from the majority of masters.",
                  "Check CLUSTER NODES for failed masters and unassigned slots; redis-cli "
                  "--cluster check host:port says what is missing");
  }
  return result(name, Level::kWarning, observed, "cluster_state=ok",
                "The node does not report its cluster state.", "Check CLUSTER INFO on this node");
}

std::vector<CheckResult> evaluate_node(const ServerFacts& facts, const ValidatorOptions& options,
                                       std::string_view expected_role) {
  std::vector<CheckResult> results = evaluate(facts, options);
  for (CheckResult& checked : results) {
    if (checked.name == "role") checked = check_topology_role(facts, expected_role);
  }
  results.push_back(expected_role == "master" ? check_min_replicas(facts)
                                              : check_replication_link(facts));
  if (facts.cluster_info) results.push_back(check_cluster_state(facts));
  return results;
}

}  // namespace prodsafe::runtime_checks
