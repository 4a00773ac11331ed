// The prodsafe CLI's subcommands. Each returns the process exit code
// (failure.hpp lists them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "failure.hpp"
#include "prodsafe/redis/options.hpp"
#include "prodsafe/runtime_checks/check_result.hpp"

namespace prodsafe::redis {
class Client;
}
namespace prodsafe::embedded {
class RedisServer;
}

namespace prodsafe::cli {

// `prodsafe demo`: what the foundation does, against a private redis-server
// (or `redis_url`, with `tls`): version, round trips, pipelines, concurrency,
// scripts, and recovery from a Redis crash and a Redis pause. With
// `embedded_tls` (and no `redis_url`) the private server listens on TLS only,
// with certificates made in a temporary directory, and the demo connects with
// rediss:// trusting their CA.
int run_foundation_demo(const std::optional<std::string>& redis_url, redis::TlsOptions tls,
                        bool embedded_tls);

struct OrdersDemoReport {
  int requested = 0;
  int executed = 0;
  int suppressed = 0;
  int placed_exactly_once = 0;          // distinct orders the exchange saw once
  int retries = 0;                      // calls retried (the Redis crash)
  int recoveries = 0;                   // expired leases taken over
  int lost = 0;                         // orders that failed for good
  bool recovery_fenced = false;         // the orphaned order was recovered with a higher token
  bool crash_order_placed_once = true;  // stays true when no crash was staged
};

// The idempotency part of the demo. `server` may be null (a user's Redis):
// then no crash is staged.
OrdersDemoReport run_orders_demo(std::shared_ptr<redis::Client> client,
                                 embedded::RedisServer* server,
                                 const std::filesystem::path& journal_directory);

struct CheckArguments {
  std::string url;
  bool json = false;
  std::string fail_at = "error";
  bool strict_durability = false;
  std::size_t latency_samples = 20;  // 0 to 1000000 (main.cpp checks the flag)
  bool no_colour = false;
  redis::TlsOptions tls{};  // the TLS flags (tls_flags.hpp)
};

// `prodsafe check [URL]`: exit 0 when no result is at or above --fail-at, 1
// when one is, 2 when Redis cannot be checked (unreachable, refused), 64 for a
// malformed URL or a bad --fail-at. With --json every outcome is one JSON
// object on stdout (failures: failure.hpp), and nothing is printed on stderr
// but --insecure's warning.
int run_check(const CheckArguments& arguments);

// `check --json`'s "results" (one object per check) and "summary" (counts by
// level), added to `out`; the dashboard shows the same.
void add_check_results_json(const std::vector<runtime_checks::CheckResult>& results,
                            nlohmann::json& out);

// Where `check`'s failures go: JSON on stdout with --json (with "url" when
// `redacted_url` is not empty, and "passed": false), else stderr.
[[nodiscard]] FailureOutput check_failure_output(bool json, std::string redacted_url);

// The table `prodsafe check` prints (also used by the demo).
void print_check_table(const std::string& url,
                       const std::vector<runtime_checks::CheckResult>& results, bool colours);

struct BreakerDemoReport {
  int calls = 0;
  int failures = 0;
  int refused = 0;
  int alerts = 0;
  bool opened_at_threshold = false;
  bool recovered = false;
};

// The breaker part of the demo: opens at its threshold, refuses, recovers.
BreakerDemoReport run_breaker_demo(std::shared_ptr<redis::Client> client);

// `prodsafe ping URL`: connects through the pool (with `tls`) and prints the
// server's version and round-trip times.
int run_ping(const std::string& redis_url, const redis::TlsOptions& tls, int count);

struct ChaosArguments {
  std::vector<std::string> scenarios{};  // empty: all
  std::string redis_url{};               // empty: an embedded redis-server per scenario
  bool quick = false;
  std::string json{};  // the file for the JSON report; empty: none
  std::string work_dir{};
  std::uint64_t seed = 0;  // 0: random, printed
  bool list = false;
  bool break_guard = false;   // hidden, test-only
  redis::TlsOptions tls{};    // for redis_url (tls_flags.hpp)
  bool embedded_tls = false;  // --tls without --redis: TLS-only embedded servers
};

// `prodsafe chaos`: runs the chaos scenarios (chaos/framework/scenario.hpp), prints
// each one's invariant table and a summary. Exit 0: every invariant held
// (skipped scenarios included); 1: one was violated or a scenario failed;
// 2: the --redis given cannot be reached; 64: an unknown scenario; 74: the
// work directory or the JSON report cannot be written. With --json FILE the
// report (chaos::report_json plus schema_version and exit_code), or the
// failure that stopped the run (failure.hpp), is written to FILE.
int run_chaos(const ChaosArguments& arguments);

// Where `chaos`'s failures go: stderr, and as JSON ("ok": false) into
// `json_file` unless it is empty.
[[nodiscard]] FailureOutput chaos_failure_output(const std::string& json_file);

// `prodsafe chaos-worker --spec FILE` (hidden): one chaos worker process,
// started by the scenarios. Exit status: chaos::kWorker*.
int run_chaos_worker(const std::string& spec_file);

}  // namespace prodsafe::cli
