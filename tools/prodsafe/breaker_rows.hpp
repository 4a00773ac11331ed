// The fleet's circuit breakers as `prodsafe breaker` and the dashboard read
// and control them: RedisBreakerStore's hashes (circuit:<job_type>).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "prodsafe/breaker/redis_breaker_store.hpp"

namespace prodsafe::redis {
class Client;
}

namespace prodsafe::cli {

// One breaker as list and show report it, or why its key cannot be read.
struct BreakerRow {
  std::string job_type{};
  std::string key{};
  std::optional<breaker::Snapshot> snapshot{};  // nullopt: damaged
  std::string error{};                          // why, when damaged
};

// Empty when `job_type` is one CircuitBreaker accepts, else why not.
[[nodiscard]] std::string job_type_problem(std::string_view job_type);

// Every job type with a breaker hash (circuit:<job_type>), found with SCAN,
// sorted.
[[nodiscard]] std::vector<std::string> breaker_job_types(redis::Client& client);

// The breaker of `job_type` under `rules`; a hash that does not decode is a
// damaged row. Throws what the store throws when Redis cannot be reached.
[[nodiscard]] BreakerRow read_breaker(breaker::RedisBreakerStore& store,
                                      const std::string& job_type,
                                      const breaker::BreakerRules& rules);

// The rules a command that clears the window must use: as many buckets and
// probe permits as the hash has fields for, at least the defaults.
[[nodiscard]] breaker::BreakerRules clearing_rules(redis::Client& client, const std::string& key);

// "open", "close", "disable", "reset" as the store's command; nullopt for
// anything else.
[[nodiscard]] std::optional<breaker::Command> breaker_command_of(std::string_view action);

// Who `prodsafe breaker open|close|disable` says forced a breaker, without
// --actor: "prodsafe-cli:<$USER>@<host name>".
[[nodiscard]] std::string cli_actor();

// The row as `breaker list --json` and the dashboard show it (names and
// errors through json_bytes: the document always serialises; forced_by and
// forced_at_ms null when nothing forced holds).
[[nodiscard]] nlohmann::json breaker_json(const BreakerRow& row);

}  // namespace prodsafe::cli
