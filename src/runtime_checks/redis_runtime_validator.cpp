#include "prodsafe/runtime_checks/redis_runtime_validator.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "checks.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "topology.hpp"

namespace prodsafe::runtime_checks {

std::string_view to_string(Level level) noexcept {
  switch (level) {
    case Level::kOk:
      return "OK";
    case Level::kWarning:
      return "WARNING";
    case Level::kError:
      return "ERROR";
    case Level::kCritical:
      return "CRITICAL";
  }
  return "UNKNOWN";
}

std::optional<Level> parse_level(std::string_view text) noexcept {
  std::string lower;
  for (char c : text) lower.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
  if (lower == "ok") return Level::kOk;
  if (lower == "warning") return Level::kWarning;
  if (lower == "error") return Level::kError;
  if (lower == "critical") return Level::kCritical;
  return std::nullopt;
}

Summary summarize(const std::vector<CheckResult>& results) {
  Summary summary;
  summary.total_checks = results.size();
  for (const CheckResult& result : results) {
    switch (result.level) {
      case Level::kOk:
        ++summary.ok;
        break;
      case Level::kWarning:
        ++summary.warning;
        break;
      case Level::kError:
        ++summary.error;
        break;
      case Level::kCritical:
        ++summary.critical;
        break;
    }
  }
  return summary;
}

Level worst_level(const std::vector<CheckResult>& results) {
  Level worst = Level::kOk;
  for (const CheckResult& result : results) worst = std::max(worst, result.level);
  return worst;
}

RedisRuntimeValidator::RedisRuntimeValidator(std::shared_ptr<redis::Client> client,
                                             ValidatorOptions options)
    : client_(std::move(client)), options_(options) {
  if (!client_) throw InvalidArgument("RedisRuntimeValidator needs a redis::Client, got null");
  const bool ordered = 0.0 <= options_.memory_critical_free &&
                       options_.memory_critical_free <= options_.memory_error_free &&
                       options_.memory_error_free <= options_.memory_warning_free &&
                       options_.memory_warning_free <= 1.0;
  if (!ordered) {
    throw InvalidArgument(fmt::format(
        "ValidatorOptions memory thresholds must satisfy 0 <= critical ({}) <= error ({}) <= "
        "warning ({}) <= 1",
        options_.memory_critical_free, options_.memory_error_free, options_.memory_warning_free));
  }
}

void RedisRuntimeValidator::publish(const std::vector<CheckResult>& results) {
  metrics::Registry& registry =
      options_.metrics != nullptr ? *options_.metrics : metrics::default_registry();
  auto& by_level = registry.gauge("prodsafe_runtime_checks",
                                  "Runtime checks at each level in the last run.", {"level"});
  auto& by_check = registry.gauge("prodsafe_runtime_check_level",
                                  "Each runtime check's level in the last run: 0 ok, 1 warning, "
                                  "2 error, 3 critical.",
                                  {"check"});
  const Summary summary = summarize(results);
  by_level.labels({"ok"}).set(static_cast<double>(summary.ok));
  by_level.labels({"warning"}).set(static_cast<double>(summary.warning));
  by_level.labels({"error"}).set(static_cast<double>(summary.error));
  by_level.labels({"critical"}).set(static_cast<double>(summary.critical));
  // A topology repeats each check per node: the gauge holds the worst.
  std::map<std::string, Level> worst;
  for (const CheckResult& result : results) {
    const auto [at, added] = worst.emplace(result.name, result.level);
    if (!added) at->second = std::max(at->second, result.level);
  }
  for (const auto& [check, level] : worst) by_check.labels({check}).set(static_cast<double>(level));
  // A check an earlier run published but this one did not produce (a
  // topology's "reachable" or "cluster_health" once every node is back)
  // reads OK, not the level it had then.
  for (const std::string& check : published_) {
    if (!worst.contains(check)) by_check.labels({check}).set(static_cast<double>(Level::kOk));
  }
  for (const auto& [check, level] : worst) published_.insert(check);
}

std::vector<CheckResult> RedisRuntimeValidator::run() {
  results_ = client_->endpoint().topology == redis::Endpoint::Topology::kStandalone
                 ? evaluate(collect_facts(*client_, options_), options_)
                 : check_topology(*client_, options_);
  ran_ = true;
  publish(results_);
  return results_;
}

bool RedisRuntimeValidator::validate_on_startup(Level fail_at) {
  try {
    run();
  } catch (const Error& error) {
    logger()->critical("Redis runtime checks could not run against {}: {}",
                       client_->endpoint().redacted(), error.what());
    return false;
  }
  for (const CheckResult& result : results_) {
    const std::string line =
        fmt::format("redis check {}{}: {} ({}; expected {}){}{}",
                    result.node.empty() ? "" : result.node + " " + result.node_role + " ",
                    result.name, to_string(result.level), result.observed, result.expected,
                    result.level == Level::kOk ? "" : ": " + result.message,
                    result.remediation.empty() ? "" : " Fix: " + result.remediation);
    switch (result.level) {
      case Level::kOk:
        logger()->info("{}", line);
        break;
      case Level::kWarning:
        logger()->warn("{}", line);
        break;
      case Level::kError:
        logger()->error("{}", line);
        break;
      case Level::kCritical:
        logger()->critical("{}", line);
        break;
    }
  }
  return worst_level(results_) < fail_at;
}

Summary RedisRuntimeValidator::get_summary() {
  if (!ran_) run();
  return summarize(results_);
}

}  // namespace prodsafe::runtime_checks
