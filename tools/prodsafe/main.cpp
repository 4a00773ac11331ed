#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "prodsafe/core/error.hpp"

namespace {

std::string default_redis_url() {
  const char* env = std::getenv("REDIS_URL");
  return env != nullptr && *env != '\0' ? env : "redis://127.0.0.1:6379";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "prodsafe: exactly-once side effects, fleet-wide circuit breakers and Redis "
      "safety checks for trading and job systems"};
  app.require_subcommand(1);

  std::optional<std::string> demo_url;
  auto* demo = app.add_subcommand(
      "demo", "Show what prodsafe does against a private redis-server (or --redis URL)");
  demo->add_option("--redis", demo_url,
                   "Use this Redis instead of starting a private one (only keys under "
                   "prodsafe:demo: are touched)");

  prodsafe::cli::CheckArguments check_arguments{.url = default_redis_url()};
  auto* check = app.add_subcommand(
      "check",
      "Check that a Redis is configured so prodsafe's records are neither lost nor "
      "evicted. Exit 0: nothing at or above --fail-at; 1: something is; 2: Redis "
      "cannot be checked");
  check->add_option("url", check_arguments.url,
                    "Redis URL (default: $REDIS_URL, else redis://127.0.0.1:6379)");
  check->add_flag("--json", check_arguments.json, "Print the results as JSON");
  check->add_option("--fail-at", check_arguments.fail_at,
                    "Lowest level that fails: ok, warning, error (default) or critical");
  check->add_flag("--strict-durability", check_arguments.strict_durability,
                  "Treat appendfsync everysec as a warning");
  check->add_option("--latency-samples", check_arguments.latency_samples,
                    "PINGs timed for the latency check (0 skips it; default 20)");
  check->add_flag("--no-colour,--no-color", check_arguments.no_colour, "Plain table on a terminal");

  std::string ping_url = default_redis_url();
  int ping_count = 1000;
  auto* ping = app.add_subcommand("ping", "Connect to Redis, print its version and round trip");
  ping->add_option("url", ping_url, "Redis URL (default: $REDIS_URL, else redis://127.0.0.1:6379)");
  ping->add_option("-n,--count", ping_count, "Number of PINGs to time")
      ->check(CLI::Range(1, 1000000));

  CLI11_PARSE(app, argc, argv);

  try {
    if (*demo) return prodsafe::cli::run_foundation_demo(demo_url);
    if (*ping) return prodsafe::cli::run_ping(ping_url, ping_count);
    if (*check) return prodsafe::cli::run_check(check_arguments);
  } catch (const prodsafe::InvalidArgument& error) {
    std::cerr << "prodsafe: " << error.what() << "\n";
    return prodsafe::cli::kExitFailed;
  } catch (const prodsafe::StoreUnavailable& error) {
    std::cerr << "prodsafe: " << error.what() << "\n";
    return prodsafe::cli::kExitUnreachable;
  } catch (const std::exception& error) {
    std::cerr << "prodsafe: " << error.what() << "\n";
    return prodsafe::cli::kExitFailed;
  }
  return prodsafe::cli::kExitFailed;
}
