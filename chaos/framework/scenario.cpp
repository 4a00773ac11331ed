// ScenarioResult, the registry, and running a list of scenarios.
#include "chaos/framework/scenario.hpp"

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <ostream>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/client.hpp"

namespace prodsafe::chaos {
namespace {

namespace fs = std::filesystem;

std::vector<ScenarioInfo>& registry() {
  static std::vector<ScenarioInfo> scenarios;
  return scenarios;
}

// FNV-1a: a seed per scenario that does not depend on the standard library.
std::uint64_t mix(std::uint64_t seed, std::string_view name) {
  std::uint64_t hash = 1469598103934665603ULL ^ seed;
  for (const char c : name) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash == 0 ? 1 : hash;
}

fs::path make_temporary_directory() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      (fs::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") / "prodsafe-chaos-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw IoError(
        fmt::format("cannot create a work directory from {}: {}", pattern, std::strerror(errno)));
  }
  return pattern;
}

ScenarioResult run_one(const ScenarioOptions& options, const ScenarioInfo& info,
                       const fs::path& directory, std::uint64_t seed, std::ostream& out) {
  const auto started = std::chrono::steady_clock::now();
  std::error_code ignored;
  fs::remove_all(directory, ignored);  // a reused --work-dir must not mix runs
  fs::create_directories(directory);
  ScenarioResult result;
  {
    ScenarioContext context(options, info, directory, seed, out);
    context.result().seed = options.seed;
    try {
      // A Redis that went away after the previous scenario fails this one in
      // seconds, not after each worker's call bound.
      if (!context.embedded()) {
        wait_until_redis_answers(options.redis_url, kRedisAnswerWithin, options.redis_tls);
      }
      info.run(context);
    } catch (const std::exception& error) {
      context.result().error = error.what();
    }
    result = std::move(context.result());
  }  // workers, proxies and servers are gone before the table is printed
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  try {
    std::ofstream(directory / "result.json") << result.to_json().dump(2) << "\n";
  } catch (const std::exception&) {
    // The report on stdout is what counts; the file is a convenience.
  }
  return result;
}

}  // namespace

void wait_until_redis_answers(const std::string& url, std::chrono::milliseconds within,
                              const redis::TlsOptions& tls) {
  using std::chrono::milliseconds;
  const auto deadline = std::chrono::steady_clock::now() + within;
  redis::Client client(url, redis::Options{.connect_timeout = milliseconds(1000),
                                           .command_timeout = milliseconds(1000),
                                           .pool_size = 1,
                                           .reconnect_backoff_initial = milliseconds(0),
                                           .tls = tls});
  while (true) {
    try {
      client.ping();
      return;
    } catch (const Error& error) {
      if (!error.retryable()) {
        throw StoreUnavailable(fmt::format("Redis at {} refused PING: {}",
                                           client.endpoint().redacted(), error.what()));
      }
      if (std::chrono::steady_clock::now() + milliseconds(250) >= deadline) {
        throw StoreUnavailable(
            fmt::format("cannot reach Redis at {}: no answer to PING within {} s "
                        "(last error: {})",
                        client.endpoint().redacted(), std::chrono::duration<double>(within).count(),
                        error.what()));
      }
    }
    std::this_thread::sleep_for(milliseconds(250));
  }
}

bool ScenarioResult::ok() const noexcept {
  return error.empty() && std::all_of(invariants.begin(), invariants.end(),
                                      [](const Invariant& row) { return row.held; });
}

std::string ScenarioResult::table() const {
  std::string status = !skipped.empty() ? "SKIPPED" : ok() ? "PASSED" : "FAILED";
  std::string text = fmt::format("== {}: {} ({:.1f} s, seed {})\n", name, status, seconds, seed);
  if (!summary.empty()) text += fmt::format("   {}\n", summary);
  if (!skipped.empty()) return text + fmt::format("   skipped: {}\n", skipped);
  if (!error.empty()) text += fmt::format("   ERROR: {}\n", error);
  return text + invariant_table(invariants, measurements);
}

nlohmann::json ScenarioResult::to_json() const {
  nlohmann::json invariant_rows = nlohmann::json::array();
  for (const Invariant& row : invariants) {
    invariant_rows.push_back(
        {{"name", row.name}, {"held", row.held}, {"count", row.count}, {"detail", row.detail}});
  }
  nlohmann::json measurement_rows = nlohmann::json::array();
  for (const Measurement& row : measurements)
    measurement_rows.push_back({{"name", row.name}, {"count", row.count}, {"detail", row.detail}});
  return {{"name", name},
          {"summary", summary},
          {"ok", ok()},
          {"skipped", skipped},
          {"error", error},
          {"seed", seed},
          {"seconds", seconds},
          {"work_dir", work_dir.string()},
          {"invariants", std::move(invariant_rows)},
          {"measurements", std::move(measurement_rows)},
          {"details", details}};
}

std::string Trial::row(std::string_view name) const {
  return tag.empty() ? std::string(name) : fmt::format("{}: {}", tag, name);
}

bool register_scenario(ScenarioInfo info) {
  if (find_scenario(info.name) != nullptr)
    throw InvalidArgument(fmt::format("the chaos scenario '{}' is registered twice", info.name));
  registry().push_back(std::move(info));
  return true;
}

std::vector<ScenarioInfo> registered_scenarios() {
  std::vector<ScenarioInfo> scenarios = registry();
  std::sort(scenarios.begin(), scenarios.end(),
            [](const ScenarioInfo& a, const ScenarioInfo& b) { return a.name < b.name; });
  return scenarios;
}

const ScenarioInfo* find_scenario(std::string_view name) {
  for (const ScenarioInfo& info : registry()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

nlohmann::json trial_details(const WorkerStats& total, const std::vector<std::string>& hung,
                             double seconds, const CheckReport& report, nlohmann::json own) {
  own.update({{"max_call_latency_us", total.max_call_latency_us},
              {"hung_workers", hung},
              {"seconds", seconds},
              {"check", report.to_json()}});
  return own;
}

nlohmann::json report_json(std::span<const ScenarioResult> results, std::uint64_t seed) {
  nlohmann::json scenarios = nlohmann::json::array();
  bool ok = true;
  for (const ScenarioResult& result : results) {
    scenarios.push_back(result.to_json());
    ok = ok && result.ok();
  }
  return {{"ok", ok}, {"seed", seed}, {"scenarios", std::move(scenarios)}};
}

std::vector<ScenarioResult> run_scenarios(const ScenarioOptions& given,
                                          std::span<const std::string> names, std::ostream& out) {
  std::vector<ScenarioInfo> selected;
  if (names.empty()) {
    selected = registered_scenarios();
  } else {
    for (const std::string& name : names) {
      const ScenarioInfo* info = find_scenario(name);
      if (info == nullptr) {
        std::vector<std::string> known;
        for (const ScenarioInfo& scenario : registered_scenarios()) known.push_back(scenario.name);
        throw InvalidArgument(fmt::format("no chaos scenario '{}' (known: {})", name,
                                          first_few(known, known.size())));
      }
      selected.push_back(*info);
    }
  }
  if (given.embedded_tls && !given.redis_url.empty()) {
    throw InvalidArgument(
        "ScenarioOptions::embedded_tls makes the embedded servers speak TLS; with an external "
        "Redis (redis_url) set its TLS in redis_tls instead");
  }
  ScenarioOptions options = given;
  if (options.seed == 0) {
    std::random_device device;
    options.seed = (std::uint64_t{device()} << 32 | device()) % 1000000000000ULL + 1;
  }
  if (!options.redis_url.empty()) {
    wait_until_redis_answers(options.redis_url, kRedisAnswerWithin, options.redis_tls);
  }
  const bool temporary = options.work_dir.empty();
  const fs::path work_dir = temporary ? make_temporary_directory() : options.work_dir;
  fs::create_directories(work_dir);
  out << fmt::format("chaos: {} scenario(s), seed {}, {} sizes, Redis: {}, work dir {}\n",
                     selected.size(), options.seed, options.quick ? "quick" : "full",
                     !options.redis_url.empty() ? redis::redact_url(options.redis_url)
                     : options.embedded_tls     ? "embedded per scenario, TLS only"
                                                : "embedded per scenario",
                     work_dir.string())
      << std::flush;

  std::vector<ScenarioResult> results;
  for (const ScenarioInfo& info : selected) {
    ScenarioResult result =
        run_one(options, info, work_dir / info.name, mix(options.seed, info.name), out);
    out << result.table() << std::flush;
    results.push_back(std::move(result));
  }

  const bool ok = std::all_of(results.begin(), results.end(),
                              [](const ScenarioResult& result) { return result.ok(); });
  if (!options.json_output.empty()) {
    std::ofstream json(options.json_output, std::ios::trunc);
    json << report_json(results, options.seed).dump(2) << "\n";
    if (!json) {
      throw IoError(
          fmt::format("cannot write the JSON report to {}", options.json_output.string()));
    }
  }
  if (temporary && ok) {
    std::error_code ignored;
    fs::remove_all(work_dir, ignored);
  } else if (!ok) {
    out << fmt::format("chaos: the ledgers, worker logs and stats are kept in {}\n",
                       work_dir.string());
  }
  return results;
}

}  // namespace prodsafe::chaos
