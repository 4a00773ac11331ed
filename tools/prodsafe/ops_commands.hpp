// The operator commands: `prodsafe breaker`, `effects`, `retry` and
// `journal`. Each run_* returns the process exit code (failure.hpp): 0 done,
// 1 refused or not found (the message says why), 2 Redis unreachable or
// refusing us, 64 a usage error, 74 a local file that cannot be read or
// written. docs/operations.md describes them; each command's JSON starts with
// schema_version, exit_code and url (ops_common.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "ops_common.hpp"

namespace CLI {
class App;
}

namespace prodsafe::cli {

// `prodsafe breaker list | show JOB | open JOB | close JOB | disable JOB |
// reset JOB` over the breakers' Redis hashes (circuit:<job_type>).
struct BreakerArguments {
  OpsArguments ops{};
  std::string action{};  // list, show, open, close, disable, reset
  std::string job_type{};
  // The window the breakers count over, as their CircuitBreakerOptions say:
  // list and show report failures and successes in it. Defaults: the
  // library's (5 minutes, 10 buckets).
  std::string window = "5m";
  int buckets = 10;
  // open, close, disable: who is recorded as having forced it (default:
  // cli_actor(), "prodsafe-cli:<user>@<host>").
  std::string actor{};
};
int run_breaker(const BreakerArguments& arguments);

// `prodsafe effects list [--type T] [--state S] [--older-than D] |
// show TYPE ID | clear TYPE ID [--force]` over the effect records
// (effect:<TYPE>:<entity_id>).
struct EffectsArguments {
  OpsArguments ops{};
  std::string action{};      // list, show, clear
  std::string type{};        // list: --type; show, clear: TYPE
  std::string id{};          // show, clear: ID
  std::string state{};       // list: --state (in_progress, expired, completed, failed, unavailable,
                             // released, damaged)
  std::string older_than{};  // list: --older-than D
  std::size_t limit = 100;   // list: rows shown at most (all are counted)
  bool force = false;        // clear: also an in-progress record with a live lease
};
int run_effects(const EffectsArguments& arguments);

// `prodsafe retry stats [JOB_TYPE]`: the fleet histograms
// (retry:histogram:<job_type>) and the open retry windows (retry:window:<id>).
struct RetryArguments {
  OpsArguments ops{};
  std::string job_type{};   // empty: every job type
  std::size_t limit = 100;  // windows shown at most (all are counted)
};
int run_retry_stats(const RetryArguments& arguments);

// `prodsafe journal list [--dir D]` (no Redis) and `prodsafe journal flush
// [--dir D] [--namespace N] --redis URL`.
struct JournalArguments {
  OpsArguments ops{};
  std::string action{};      // list, flush
  std::string directory{};   // empty: idempotency::default_journal_directory()
  std::string name_space{};  // the wrappers' WrapperOptions::journal_namespace, if they set one
  bool redis_given = false;  // flush needs --redis
};
int run_journal(const JournalArguments& arguments);

// `prodsafe dashboard`: serves the fleet's live view (docs/operations.md,
// "The dashboard") until SIGINT or SIGTERM. Exit 0 after a signal, 64 for a
// usage error (a bad --listen, a non-loopback address without
// --allow-remote), 74 when the address cannot be bound, 78 when its host does
// not resolve. Redis being unreachable is shown on the page, not an exit.
struct DashboardArguments {
  OpsArguments ops{};
  std::string listen = "127.0.0.1:8080";  // host:port, [v6]:port
  bool allow_remote = false;              // bind a non-loopback address
  bool allow_actions = false;             // the page may open/close/reset breakers, clear effects
  std::string token_file{};               // the bearer token (else $PRODSAFE_DASHBOARD_TOKEN; none)
  std::string refresh = "1s";             // how often Redis is read
  std::string window = "5m";              // the breakers' window, as their CircuitBreakerOptions
  int buckets = 10;
  std::uint64_t failure_threshold = 10;
  std::size_t scan_budget = 10'000;  // keys asked of SCAN per refresh (FleetCensus)
  std::string checks_every = "30s";
};
int run_dashboard(const DashboardArguments& arguments);

}  // namespace prodsafe::cli
