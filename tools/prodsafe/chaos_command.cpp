// `prodsafe chaos` and its hidden worker, `prodsafe chaos-worker`.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>

#include <fmt/format.h>

#include "chaos/framework/scenario.hpp"
#include "chaos/worker/worker.hpp"
#include "commands.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"

namespace prodsafe::cli {

int run_chaos_worker(const std::string& spec_file) {
  return chaos::run_worker_from_file(spec_file);
}

int run_chaos(const ChaosArguments& arguments) {
  if (arguments.list) {
    for (const chaos::ScenarioInfo& info : chaos::registered_scenarios())
      fmt::print("{:<16} {}\n", info.name, info.summary);
    return kExitOk;
  }
  // A Redis the scenario kills must not take this process down with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  // The scenarios report what matters; the library's own warnings (a killed
  // Redis is unreachable, by design) would bury it.
  logger()->set_level(spdlog::level::err);

  const chaos::ScenarioOptions options{.redis_url = arguments.redis_url,
                                       .quick = arguments.quick,
                                       .work_dir = arguments.work_dir,
                                       .progress = ::isatty(STDOUT_FILENO) == 1,
                                       .break_guard = arguments.break_guard,
                                       .seed = arguments.seed,
                                       .json_output = arguments.json};
  std::vector<chaos::ScenarioResult> results;
  try {
    results = chaos::run_scenarios(options, arguments.scenarios, std::cout);
  } catch (const InvalidArgument& error) {  // an unknown scenario, a malformed --redis
    std::cerr << "prodsafe chaos: " << error.what() << "\n";
    return kExitUsage;
  } catch (const StoreUnavailable& error) {  // the --redis given does not answer
    std::cerr << "prodsafe chaos: " << error.what() << "\n";
    return kExitUnreachable;
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
  return failed == 0 ? kExitOk : kExitFailed;
}

}  // namespace prodsafe::cli
