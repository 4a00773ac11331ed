// `prodsafe breaker list | show JOB | open JOB | close JOB | disable JOB |
// reset JOB`: the fleet's circuit breakers as RedisBreakerStore keeps them.
#include <algorithm>
#include <charconv>
#include <iostream>
#include <set>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "breaker_rows.hpp"
#include "ops_commands.hpp"
#include "prodsafe/breaker/redis_breaker_store.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/endpoint.hpp"

namespace prodsafe::cli {
namespace {

using breaker::BreakerRules;
using breaker::Command;
using breaker::RedisBreakerStore;
using breaker::Snapshot;
using breaker::State;
using std::chrono::milliseconds;

std::vector<std::string> row_cells(const BreakerRow& row) {
  if (!row.snapshot) return {row.job_type, "DAMAGED", "", "", "", row.error};
  const Snapshot& s = *row.snapshot;
  std::string note;
  if (s.state == State::kOpen) note = "half-open in " + format_duration(s.retry_after);
  if (!s.forced_by.empty()) note = "forced by " + printable(s.forced_by, 60);
  return {row.job_type,
          std::string(breaker::to_string(s.state)),
          std::to_string(s.failures),
          std::to_string(s.successes),
          std::to_string(s.trips),
          note};
}

}  // namespace

int run_breaker(const BreakerArguments& arguments) {
  const OpsArguments& ops = arguments.ops;
  const std::string url = redis::redact_url(ops.url);
  const FailureOutput output = ops_failure_output("breaker", ops.json, url);
  const auto window = parse_duration(arguments.window);
  if (!window || window->count() == 0) {
    return report(output, usage_failure(fmt::format(
                              "--window must be a duration such as 30s, 5m or 1h, not '{}'",
                              arguments.window)));
  }
  if (arguments.action != "list") {
    if (const std::string problem = job_type_problem(arguments.job_type); !problem.empty()) {
      return report(output, usage_failure(problem));
    }
  }
  BreakerRules rules;
  rules.time_window = *window;
  rules.window_buckets = arguments.buckets;
  logger()->set_level(spdlog::level::off);  // the command reports for itself

  try {
    auto client = ops_client(ops);
    RedisBreakerStore store(client);
    nlohmann::json out = ops_json(url, kExitOk);
    out["window_ms"] = rules.time_window.count();
    out["buckets"] = rules.window_buckets;

    if (arguments.action == "list") {
      std::vector<BreakerRow> rows;
      for (const std::string& job_type : breaker_job_types(*client)) {
        rows.push_back(read_breaker(store, job_type, rules));
      }
      if (ops.json) {
        out["breakers"] = nlohmann::json::array();
        for (const BreakerRow& row : rows) out["breakers"].push_back(breaker_json(row));
        print_json(out);
        return kExitOk;
      }
      if (rows.empty()) {
        fmt::print("No circuit breakers in {}\n", url);
        return kExitOk;
      }
      Table table({"JOB TYPE", "STATE", "FAILURES", "SUCCESSES", "TRIPS", "NOTE"});
      for (const BreakerRow& row : rows) table.add(row_cells(row));
      fmt::print("Circuit breakers in {} (failures and successes in the last {}):\n\n{}", url,
                 format_duration(rules.time_window), table.str());
      return kExitOk;
    }

    const std::string key = store.key(arguments.job_type);
    if (arguments.action == "show") {
      if (client->command({"EXISTS", key}).integer() == 0) {
        return report(output, Failure{.message = fmt::format(
                                          "no circuit breaker for job type '{}' (no key {})",
                                          arguments.job_type, key)});
      }
      const BreakerRow row = read_breaker(store, arguments.job_type, rules);
      if (!row.snapshot) return report(output, Failure{.message = row.error});
      if (ops.json) {
        out["breaker"] = breaker_json(row);
        print_json(out);
        return kExitOk;
      }
      const Snapshot& s = *row.snapshot;
      Table table({"FIELD", "VALUE"});
      table.add({"job type", row.job_type});
      table.add({"key", row.key});
      table.add({"state", std::string(breaker::to_string(s.state))});
      table.add({"failures",
                 fmt::format("{} in the last {}", s.failures, format_duration(rules.time_window))});
      table.add({"successes", fmt::format("{} in the last {}", s.successes,
                                          format_duration(rules.time_window))});
      table.add({"trips", fmt::format("{} consecutive", s.trips)});
      if (s.state == State::kOpen) {
        table.add({"half-open in", format_duration(s.retry_after)});
      }
      if (!s.forced_by.empty()) {
        const auto ago = milliseconds(server_now_ms(*client)) - s.forced_at;
        table.add({"forced by", fmt::format("{}, {} ago", printable(s.forced_by, 200),
                                            format_duration(std::max(ago, milliseconds(0))))});
      }
      fmt::print("{}", table.str());
      return kExitOk;
    }

    // open, close, disable, reset: through the store, as CircuitBreaker's
    // force_open(), force_close(), disable() and reset() do.
    const bool existed = client->command({"EXISTS", key}).integer() == 1;
    Snapshot snapshot;
    try {
      snapshot = store.control(arguments.job_type, *breaker_command_of(arguments.action),
                               clearing_rules(*client, key),
                               arguments.actor.empty() ? cli_actor() : arguments.actor);
    } catch (const DecodeError& error) {
      return report(output, Failure{.message = error.what()});
    }
    if (ops.json) {
      out["job_type"] = arguments.job_type;
      out["key"] = key;
      out["action"] = arguments.action;
      out["previous"] = breaker::to_string(snapshot.previous);
      out["state"] = breaker::to_string(snapshot.state);
      out["transitioned"] = snapshot.transitioned;
      out["created"] = !existed;
      out["forced_by"] =
          snapshot.forced_by.empty() ? nlohmann::json() : json_bytes(snapshot.forced_by);
      print_json(out);
      return kExitOk;
    }
    if (snapshot.transitioned) {
      fmt::print("breaker {}: {} -> {}{}\n", arguments.job_type,
                 breaker::to_string(snapshot.previous), breaker::to_string(snapshot.state),
                 existed ? "" : " (new: no breaker had recorded anything for it)");
    } else {
      fmt::print("breaker {}: {} (unchanged{})\n", arguments.job_type,
                 breaker::to_string(snapshot.state),
                 arguments.action == "reset" ? "; window and trips cleared" : "");
    }
    return kExitOk;
  } catch (const std::exception& error) {
    return report(output, failure_of(error));
  }
}

}  // namespace prodsafe::cli
