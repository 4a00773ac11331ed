// `prodsafe chaos` and its hidden worker, `prodsafe chaos-worker`.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "chaos/framework/scenario.hpp"
#include "chaos/worker/worker.hpp"
#include "commands.hpp"
#include "failure.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"

namespace prodsafe::cli {

int run_chaos_worker(const std::string& spec_file) {
  return chaos::run_worker_from_file(spec_file);
}

namespace {

// The JSON report: chaos::report_json with the schema version and the exit
// code beside it, as every --json output has.
int write_report(const ChaosArguments& arguments, const std::vector<chaos::ScenarioResult>& results,
                 int exit_code) {
  nlohmann::json report =
      chaos::report_json(results, results.empty() ? arguments.seed : results.front().seed);
  report["schema_version"] = kJsonSchemaVersion;
  report["exit_code"] = exit_code;
  std::ofstream file(arguments.json, std::ios::trunc);
  file << report.dump(2) << "\n" << std::flush;
  if (file) return exit_code;
  std::cerr << "prodsafe chaos: cannot write the JSON report to " << arguments.json << ": "
            << std::strerror(errno) << "\n";
  return kExitIo;
}

}  // namespace

FailureOutput chaos_failure_output(const std::string& json_file) {
  return {.command = "chaos", .json_file = json_file, .fields = {{"ok", false}}};
}

int run_chaos(const ChaosArguments& arguments) {
  if (arguments.list) {
    for (const chaos::ScenarioInfo& info : chaos::registered_scenarios())
      fmt::print("{:<16} {}\n", info.name, info.summary);
    return kExitOk;
  }
  const FailureOutput failure_output = chaos_failure_output(arguments.json);
  for (const std::string& name : arguments.scenarios) {
    if (chaos::find_scenario(name) != nullptr) continue;
    std::string known;
    for (const chaos::ScenarioInfo& info : chaos::registered_scenarios()) {
      known += (known.empty() ? "" : ", ") + info.name;
    }
    return report(failure_output,
                  usage_failure(fmt::format("no chaos scenario '{}' (known: {})", name, known)));
  }
  // A Redis the scenario kills must not take this process down with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  // The scenarios report what matters; the library's own warnings (a killed
  // Redis is unreachable, by design) would bury it.
  logger()->set_level(spdlog::level::err);

  // No json_output: the report is written below, beside the run's exit code.
  const chaos::ScenarioOptions options{.redis_url = arguments.redis_url,
                                       .redis_tls = arguments.tls,
                                       .embedded_tls = arguments.embedded_tls,
                                       .quick = arguments.quick,
                                       .work_dir = arguments.work_dir,
                                       .progress = ::isatty(STDOUT_FILENO) == 1,
                                       .break_guard = arguments.break_guard,
                                       .seed = arguments.seed};
  std::vector<chaos::ScenarioResult> results;
  try {
    results = chaos::run_scenarios(options, arguments.scenarios, std::cout);
  } catch (const std::exception& error) {
    std::cout << std::flush;
    return report(failure_output, failure_of(error));
  }

  std::cout << "\nSUMMARY\n";
  std::size_t failed = 0;
  for (const chaos::ScenarioResult& result : results) {
    std::size_t violated = 0;
    for (const chaos::Invariant& row : result.invariants) violated += row.held ? 0 : 1;
    std::string status = "passed";
    if (!result.skipped.empty()) {
      status = "skipped: " + result.skipped;
    } else if (!result.ok()) {
      ++failed;
      status = result.error.empty() ? fmt::format("FAILED: {} invariant(s) VIOLATED", violated)
                                    : fmt::format("FAILED: {}", result.error);
    }
    std::cout << fmt::format("  {:<16} {:>6.1f} s  {:>3} invariants, {:>2} measured  {}\n",
                             result.name, result.seconds, result.invariants.size(),
                             result.measurements.size(), status);
  }
  std::cout << (failed == 0 ? "chaos: every invariant held\n"
                            : fmt::format("chaos: {} scenario(s) FAILED\n", failed))
            << std::flush;
  const int exit_code = failed == 0 ? kExitOk : kExitFailed;
  return arguments.json.empty() ? exit_code : write_report(arguments, results, exit_code);
}

}  // namespace prodsafe::cli
