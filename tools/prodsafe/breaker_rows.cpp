#include "breaker_rows.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <set>

#include <fmt/format.h>

#include "ops_common.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/client.hpp"

namespace prodsafe::cli {
namespace {

constexpr std::size_t kScanCount = 500;

}  // namespace

using breaker::BreakerRules;
using breaker::RedisBreakerStore;
using breaker::Snapshot;

// The job type as CircuitBreaker accepts it, else a usage error's message.
std::string job_type_problem(std::string_view job_type) {
  if (job_type.empty() || job_type.size() > 256) return "a job type is 1 to 256 characters";
  for (char c : job_type) {
    if (c == ':' || static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return fmt::format("job type '{}' contains ':' or a control character", job_type);
    }
  }
  return {};
}

// Every job type with a breaker hash (circuit:<job_type>), found with SCAN.
std::vector<std::string> breaker_job_types(redis::Client& client) {
  const std::string prefix = client.key("circuit:");
  std::set<std::string> found;
  scan_keys(client, glob_escape(prefix) + "*", kScanCount, [&](const auto& keys) {
    for (const std::string& key : keys) {
      const std::string name = key.substr(prefix.size());
      if (job_type_problem(name).empty()) found.insert(name);
    }
    return true;
  });
  return {found.begin(), found.end()};
}

BreakerRow read_breaker(RedisBreakerStore& store, const std::string& job_type,
                        const BreakerRules& rules) {
  BreakerRow row{.job_type = job_type, .key = store.key(job_type)};
  try {
    row.snapshot = store.read(job_type, rules);
  } catch (const DecodeError& error) {
    row.error = error.what();
  }
  return row;
}

// The rules a command that clears the window must use: as many buckets and
// probe permits as the hash has fields for (the script deletes e<i>, f<i>,
// s<i> for each bucket and p<i>, t<i> for each permit), at least the defaults.
BreakerRules clearing_rules(redis::Client& client, const std::string& key) {
  BreakerRules rules;
  const std::string_view args[] = {"HKEYS", key};
  const redis::Reply reply = client.execute(args);
  if (reply.is_error() || reply.type() != redis::Reply::Type::kArray) return rules;
  int buckets = rules.window_buckets;
  int probes = rules.half_open_max_probes;
  for (const redis::Reply& field : reply.array()) {
    const std::string& name = field.str();
    if (name.size() < 2) continue;
    int index = 0;
    const auto [stop, error] = std::from_chars(name.data() + 1, name.data() + name.size(), index);
    if (error != std::errc() || stop != name.data() + name.size() || index < 0) continue;
    if (name[0] == 'e' || name[0] == 'f' || name[0] == 's') buckets = std::max(buckets, index + 1);
    if (name[0] == 'p' || name[0] == 't') probes = std::max(probes, index);
  }
  rules.window_buckets = buckets;
  rules.half_open_max_probes = probes;
  return rules;
}

nlohmann::json breaker_json(const BreakerRow& row) {
  // Names come from Redis keys: bytes, not necessarily UTF-8 (json_bytes).
  nlohmann::json out = {{"job_type", json_bytes(row.job_type)}, {"key", json_bytes(row.key)}};
  if (!row.snapshot) {
    out["state"] = "DAMAGED";
    out["error"] = json_bytes(row.error);
    return out;
  }
  const Snapshot& s = *row.snapshot;
  out["state"] = breaker::to_string(s.state);
  out["failures"] = s.failures;
  out["successes"] = s.successes;
  out["trips"] = s.trips;
  out["retry_after_ms"] = s.retry_after.count();
  out["forced_by"] = s.forced_by.empty() ? nlohmann::json() : json_bytes(s.forced_by);
  out["forced_at_ms"] =
      s.forced_by.empty() ? nlohmann::json() : nlohmann::json(s.forced_at.count());
  return out;
}

std::string cli_actor() {
  const char* user = std::getenv("USER");
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return fmt::format("prodsafe-cli:{}@{}", user != nullptr && *user != '\0' ? user : "unknown",
                     host[0] != '\0' ? host : "unknown");
}

std::optional<breaker::Command> breaker_command_of(std::string_view action) {
  if (action == "open") return breaker::Command::kForceOpen;
  if (action == "close") return breaker::Command::kForceClose;
  if (action == "disable") return breaker::Command::kDisable;
  if (action == "reset") return breaker::Command::kReset;
  return std::nullopt;
}

}  // namespace prodsafe::cli
