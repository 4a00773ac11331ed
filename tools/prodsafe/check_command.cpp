// `prodsafe check [URL]`: the Redis production-safety checks as a table or JSON.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "failure.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/runtime_checks/redis_runtime_validator.hpp"
#include "sentinel_environment.hpp"

namespace prodsafe::cli {
namespace {

using runtime_checks::CheckResult;
using runtime_checks::Level;

// Colour only on a terminal, and not when asked for plain text: --no-colour,
// NO_COLOR set to anything but "" (no-color.org), or TERM=dumb.
bool colour_wanted(bool no_colour_flag) {
  if (no_colour_flag || ::isatty(STDOUT_FILENO) != 1) return false;
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color != nullptr && *no_color != '\0') return false;
  const char* term = std::getenv("TERM");
  return term == nullptr || std::string_view(term) != "dumb";
}

const char* colour(Level level) {
  switch (level) {
    case Level::kOk:
      return "\033[32m";
    case Level::kWarning:
      return "\033[33m";
    case Level::kError:
      return "\033[31m";
    case Level::kCritical:
      return "\033[1;31m";
  }
  return "";
}

}  // namespace

FailureOutput check_failure_output(bool json, std::string redacted_url) {
  nlohmann::json fields = {{"passed", false}};
  if (!redacted_url.empty()) fields["url"] = std::move(redacted_url);
  return {.command = "check", .json_on_stdout = json, .fields = std::move(fields)};
}

void print_check_table(const std::string& url, const std::vector<CheckResult>& results,
                       bool colours) {
  fmt::print("Redis runtime checks for {}\n\n", url);
  fmt::print("  {:<9} {:<19} {}\n", "LEVEL", "CHECK", "OBSERVED");
  // A topology's results come node by node (the validator groups them); each
  // node gets a heading (the topology's own checks, with no node, come first
  // under "topology").
  const bool topology = std::any_of(results.begin(), results.end(),
                                    [](const CheckResult& result) { return !result.node.empty(); });
  std::optional<std::string> heading;
  for (const CheckResult& result : results) {
    const std::string node =
        result.node.empty() ? "topology" : fmt::format("{} ({})", result.node, result.node_role);
    if (topology && heading != node) {
      fmt::print("\n  {}\n", node);
      heading = node;
    }
    const std::string level(runtime_checks::to_string(result.level));
    fmt::print("  {}{:<9}{} {:<19} {}\n", colours ? colour(result.level) : "", level,
               colours ? "\033[0m" : "", result.name, result.observed);
    if (result.level == Level::kOk) continue;
    fmt::print("  {:<9} {:<19} risk: {}\n", "", "", result.message);
    fmt::print("  {:<9} {:<19} want: {}\n", "", "", result.expected);
    if (!result.remediation.empty())
      fmt::print("  {:<9} {:<19} fix:  {}\n", "", "", result.remediation);
  }
  const auto summary = runtime_checks::summarize(results);
  fmt::print("\n{} checks: {} ok, {} warning, {} error, {} critical\n", summary.total_checks,
             summary.ok, summary.warning, summary.error, summary.critical);
}

void add_check_results_json(const std::vector<CheckResult>& results, nlohmann::json& out) {
  out["results"] = nlohmann::json::array();
  for (const CheckResult& result : results) {
    out["results"].push_back({{"name", result.name},
                              {"level", runtime_checks::to_string(result.level)},
                              {"severity", static_cast<int>(result.level)},
                              {"observed", result.observed},
                              {"expected", result.expected},
                              {"message", result.message},
                              {"remediation", result.remediation},
                              {"node", result.node},
                              {"node_role", result.node_role}});
  }
  const auto summary = runtime_checks::summarize(results);
  out["summary"] = {{"total_checks", summary.total_checks},
                    {"ok", summary.ok},
                    {"warning", summary.warning},
                    {"error", summary.error},
                    {"critical", summary.critical}};
}

namespace {

nlohmann::json to_json(const std::string& url, const std::vector<CheckResult>& results,
                       Level fail_at) {
  nlohmann::json out;
  out["schema_version"] = kJsonSchemaVersion;
  out["url"] = url;
  add_check_results_json(results, out);
  out["fail_at"] = runtime_checks::to_string(fail_at);
  out["fail_at_severity"] = static_cast<int>(fail_at);
  out["passed"] = runtime_checks::worst_level(results) < fail_at;
  out["exit_code"] = out["passed"] ? kExitOk : kExitFailed;
  return out;
}

// Reports a check that could not run, once, and returns its exit code.
int report_failure(const CheckArguments& arguments, const Failure& failure) {
  return report(check_failure_output(arguments.json, redis::redact_url(arguments.url)), failure);
}

}  // namespace

int run_check(const CheckArguments& arguments) {
  const auto fail_at = runtime_checks::parse_level(arguments.fail_at);
  if (!fail_at) {
    return report_failure(
        arguments,
        usage_failure(fmt::format("--fail-at must be ok, warning, error or critical, not '{}'",
                                  arguments.fail_at)));
  }
  try {
    (void)redis::parse_url(arguments.url);
  } catch (const InvalidArgument& error) {
    return report_failure(arguments, usage_failure(error.what()));
  }
  logger()->set_level(spdlog::level::off);  // the command prints its own report
  std::vector<CheckResult> results;
  std::string url;
  try {
    using std::chrono::milliseconds;
    auto client = std::make_shared<redis::Client>(
        arguments.url, redis::Options{.connect_timeout = milliseconds(2000),
                                      .command_timeout = milliseconds(2000),
                                      .pool_size = 1,
                                      .reconnect_backoff_initial = milliseconds(0),
                                      .tls = arguments.tls,
                                      .sentinel = sentinel_options_from_environment()});
    url = client->endpoint().redacted();
    runtime_checks::RedisRuntimeValidator validator(
        client, {.strict_durability = arguments.strict_durability,
                 .latency_samples = arguments.latency_samples});
    results = validator.run();
  } catch (const std::exception& error) {
    Failure failure = failure_of(error);
    failure.message =
        fmt::format("cannot check {}: {}", redis::redact_url(arguments.url), failure.message);
    return report_failure(arguments, failure);
  }
  if (arguments.json) {
    std::cout << to_json(url, results, *fail_at).dump(2) << "\n";
  } else {
    print_check_table(url, results, colour_wanted(arguments.no_colour));
  }
  return runtime_checks::worst_level(results) < *fail_at ? kExitOk : kExitFailed;
}

}  // namespace prodsafe::cli
