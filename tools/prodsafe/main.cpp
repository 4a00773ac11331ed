#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "failure.hpp"
#include "ops_commands.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/metrics/build_info.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "tls_flags.hpp"

namespace {

std::string default_redis_url() {
  const char* env = std::getenv("REDIS_URL");
  return env != nullptr && *env != '\0' ? env : "redis://127.0.0.1:6379";
}

// A whole number from 0 to 2^64 - 1. CLI11 would take "-1" for an unsigned
// option and wrap it; from_chars refuses a sign.
const CLI::Validator kUnsigned64(
    [](std::string& input) -> std::string {
      std::uint64_t value = 0;
      const char* end = input.data() + input.size();
      const auto [stop, error] = std::from_chars(input.data(), end, value);
      if (error == std::errc() && stop == end) return {};
      return "Value " + input + " not in range 0 to 18446744073709551615";
    },
    "UINT64");

// The operator commands (ops_commands.hpp).
bool is_ops_command(std::string_view command) {
  return command == "breaker" || command == "effects" || command == "retry" || command == "journal";
}

// Adds an operator command's flags: --redis, --key-prefix, --json.
void add_ops_flags(CLI::App& command, prodsafe::cli::OpsArguments& ops,
                   std::string_view redis_help) {
  command.add_option("--redis", ops.url, std::string(redis_help));
  command.add_option("--key-prefix", ops.key_prefix,
                     "The applications' redis::Options::key_prefix (default: none)");
  command.add_flag("--json", ops.json, "Print the result (or the failure) as one JSON object");
}

// An action of an operator command: `prodsafe breaker list`. Flags of the
// command (--redis, --json, TLS) may come after it.
CLI::App* add_action(CLI::App& command, std::string_view name, std::string_view help,
                     std::string& action) {
  CLI::App* sub = command.add_subcommand(std::string(name), std::string(help));
  sub->fallthrough();
  sub->callback([&action, text = std::string(name)] { action = text; });
  return sub;
}

// Where a usage error the parser found goes, by what it saw of argv: JSON on
// stdout for `check --json` and the operator commands' --json, also into the
// file of `chaos --json FILE`.
prodsafe::cli::FailureOutput parse_failure_output(int argc, char** argv) {
  using namespace prodsafe::cli;
  const std::string_view command = argc > 1 ? argv[1] : "";
  for (int i = 2; i < argc; ++i) {
    const std::string_view argument = argv[i];
    if (command == "check" && argument == "--json") return check_failure_output(true, "");
    if (is_ops_command(command) && argument == "--json") {
      return ops_failure_output(command, true, "");
    }
    if (command == "chaos" && argument == "--json" && i + 1 < argc) {
      return chaos_failure_output(argv[i + 1]);
    }
    if (command == "chaos" && argument.starts_with("--json=")) {
      return chaos_failure_output(std::string(argument.substr(7)));
    }
  }
  return {.command = command};
}

}  // namespace

int main(int argc, char** argv) {
  using namespace prodsafe::cli;
  CLI::App app{
      "prodsafe: exactly-once side effects, fleet-wide circuit breakers and Redis "
      "safety checks for trading and job systems"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "prodsafe " + std::string(prodsafe::metrics::build_version()),
                       "Print prodsafe's version and exit");

  std::optional<std::string> demo_url;
  auto* demo = app.add_subcommand(
      "demo", "Show what prodsafe does against a private redis-server (or --redis URL)");
  demo->add_option("--redis", demo_url,
                   "Use this Redis instead of starting a private one (only keys under "
                   "prodsafe:demo: are touched, and removed at the end); without it, --tls "
                   "makes the private one TLS-only");
  const TlsFlags demo_tls(*demo);

  prodsafe::cli::CheckArguments check_arguments{.url = default_redis_url()};
  auto* check = app.add_subcommand(
      "check",
      "Check that a Redis is configured so prodsafe's records are neither lost nor "
      "evicted. Exit 0: nothing at or above --fail-at; 1: something is; 2: Redis "
      "cannot be checked; 64: a usage error");
  check->add_option("url", check_arguments.url,
                    "Redis URL (default: $REDIS_URL, else redis://127.0.0.1:6379)");
  check->add_flag("--json", check_arguments.json, "Print the results as JSON");
  check->add_option("--fail-at", check_arguments.fail_at,
                    "Lowest level that fails: ok, warning, error (default) or critical");
  check->add_flag("--strict-durability", check_arguments.strict_durability,
                  "Treat appendfsync everysec as an error (it is a warning by default)");
  // Every numeric flag is range-checked while parsing: a bad value is a
  // usage error (CLI11's, like any other) and nothing runs.
  check
      ->add_option("--latency-samples", check_arguments.latency_samples,
                   "PINGs timed for the latency check, 0 to 1000000 (0 skips it; default 20)")
      ->check(CLI::Range(0, 1000000));
  check->add_flag("--no-colour,--no-color", check_arguments.no_colour,
                  "Plain table on a terminal (also with NO_COLOR set, or TERM=dumb)");
  const TlsFlags check_tls(*check);

  std::string ping_url = default_redis_url();
  int ping_count = 1000;
  auto* ping = app.add_subcommand("ping", "Connect to Redis, print its version and round trip");
  ping->add_option("url", ping_url, "Redis URL (default: $REDIS_URL, else redis://127.0.0.1:6379)");
  ping->add_option("-n,--count", ping_count, "Number of PINGs to time")
      ->check(CLI::Range(1, 1000000));
  const TlsFlags ping_tls(*ping);

  prodsafe::cli::ChaosArguments chaos_arguments;
  auto* chaos = app.add_subcommand(
      "chaos",
      "Run the chaos scenarios: worker processes against a Redis that is killed, paused and "
      "cut off, then check the history they leave. Exit 0: every invariant held; 1: one was "
      "violated");
  chaos->add_option("--scenario", chaos_arguments.scenarios,
                    "Run only this scenario (repeatable; default: all, see --list)");
  chaos->add_option("--redis", chaos_arguments.redis_url,
                    "Use this Redis instead of an embedded redis-server per scenario (only "
                    "this run's keys are touched; scenarios that kill Redis are skipped); "
                    "without it, --tls makes the embedded servers TLS-only");
  chaos->add_flag("--quick", chaos_arguments.quick, "Small sizes (the ctest sizes)");
  chaos->add_option("--json", chaos_arguments.json, "Also write the report as JSON to this file");
  chaos->add_option("--work-dir", chaos_arguments.work_dir,
                    "Keep ledgers, worker logs and stats here (default: a temporary directory, "
                    "kept only when something fails)");
  chaos
      ->add_option("--seed", chaos_arguments.seed,
                   "Seed for every random choice, 0 to 2^64 - 1 (default: 0, random)")
      ->check(kUnsigned64);
  chaos->add_flag("--list", chaos_arguments.list, "List the scenarios and exit");
  chaos->add_flag("--break-guard-for-tests", chaos_arguments.break_guard)->group("");
  const TlsFlags chaos_tls(*chaos);

  std::string chaos_worker_spec;
  auto* chaos_worker = app.add_subcommand("chaos-worker", "");
  chaos_worker->group("");
  chaos_worker->add_option("--spec", chaos_worker_spec)->required();

  // The operator commands.
  const std::string default_url = default_redis_url();
  const std::string redis_help = "Redis URL (default: $REDIS_URL, else redis://127.0.0.1:6379)";
  BreakerArguments breaker_arguments{.ops = {.url = default_url}};
  auto* breaker = app.add_subcommand(
      "breaker",
      "List, show and control the fleet's circuit breakers. Exit 0: done; 1: no such breaker, "
      "or its key holds something else; 2: Redis unreachable; 64: a usage error");
  breaker->require_subcommand(1);
  add_ops_flags(*breaker, breaker_arguments.ops, redis_help);
  breaker->add_option("--window", breaker_arguments.window,
                      "The breakers' time_window, for the failures and successes shown "
                      "(default: 5m, the library's)");
  breaker
      ->add_option("--buckets", breaker_arguments.buckets,
                   "The breakers' window_buckets (default: 10, the library's)")
      ->check(CLI::Range(1, 1000));
  breaker->add_option("--actor", breaker_arguments.actor,
                      "open, close, disable: who is recorded as forcing it, up to 256 bytes "
                      "(default: prodsafe-cli:<user>@<host>)");
  const TlsFlags breaker_tls(*breaker);
  add_action(*breaker, "list", "Every breaker: state, failures and successes in the window, trips",
             breaker_arguments.action);
  const std::pair<const char*, const char*> breaker_actions[] = {
      {"show", "One breaker in full"},
      {"open", "Force the breaker open (FORCED_OPEN): every call refused, fleet-wide"},
      {"close", "Force the breaker closed: window and trips cleared"},
      {"disable", "Disable the breaker (DISABLED): every call allowed, nothing counted"},
      {"reset", "Back to CLOSED with an empty window and no trips"}};
  for (const auto& [name, help] : breaker_actions) {
    add_action(*breaker, name, help, breaker_arguments.action)
        ->add_option("job_type", breaker_arguments.job_type, "The breaker's job type")
        ->required();
  }

  EffectsArguments effects_arguments{.ops = {.url = default_url}};
  auto* effects = app.add_subcommand(
      "effects",
      "List, show and clear effect records. Exit 0: done; 1: no such record, or clear refused; "
      "2: Redis unreachable; 64: a usage error");
  effects->require_subcommand(1);
  add_ops_flags(*effects, effects_arguments.ops, redis_help);
  const TlsFlags effects_tls(*effects);
  auto* effects_list =
      add_action(*effects, "list", "Effect records, found with SCAN", effects_arguments.action);
  effects_list->add_option("--type", effects_arguments.type, "Only this effect type");
  effects_list->add_option("--state", effects_arguments.state,
                           "Only this state: in_progress, expired (in progress, lease expired: "
                           "likely orphans), completed, failed, unavailable, released, damaged");
  effects_list->add_option("--older-than", effects_arguments.older_than,
                           "Only records created at least this long ago (30s, 5m, 2h, 1d)");
  effects_list
      ->add_option("--limit", effects_arguments.limit,
                   "Rows shown at most, 1 to 100000 (default 100; all are counted)")
      ->check(CLI::Range(1, 100000));
  for (const char* name : {"show", "clear"}) {
    auto* action = add_action(*effects, name,
                              std::string_view(name) == "show"
                                  ? "One record in full"
                                  : "Delete a record, so that the effect runs again on its next "
                                    "call (says what it deletes)",
                              effects_arguments.action);
    action->add_option("type", effects_arguments.type, "Effect type (ORDER_PLACEMENT...)")
        ->required();
    action->add_option("id", effects_arguments.id, "Entity id")->required();
    if (std::string_view(name) == "clear") {
      action->add_flag("--force", effects_arguments.force,
                       "Also delete an in-progress record whose lease is live, or a damaged one");
    }
  }

  RetryArguments retry_arguments{.ops = {.url = default_url}};
  auto* retry = app.add_subcommand(
      "retry", "Retry statistics from Redis. Exit 0: done; 2: Redis unreachable; 64: usage");
  retry->require_subcommand(1);
  add_ops_flags(*retry, retry_arguments.ops, redis_help);
  const TlsFlags retry_tls(*retry);
  std::string retry_action;
  auto* retry_stats = add_action(
      *retry, "stats", "The fleet's attempt histograms and the open retry windows", retry_action);
  retry_stats->add_option("job_type", retry_arguments.job_type, "Only this job type");
  retry_stats
      ->add_option("--limit", retry_arguments.limit,
                   "Open windows shown at most, 1 to 100000 (default 100; all are counted)")
      ->check(CLI::Range(1, 100000));

  JournalArguments journal_arguments{.ops = {.url = default_url}};
  auto* journal = app.add_subcommand(
      "journal",
      "What waits in local commit journals, and committing it now. Exit 0: done; 1: entries "
      "could not be committed; 2: Redis unreachable; 64: usage; 74: a journal unreadable");
  journal->require_subcommand(1);
  auto* journal_redis = journal->add_option("--redis", journal_arguments.ops.url,
                                            "Redis URL (flush; default: $REDIS_URL, else "
                                            "redis://127.0.0.1:6379)");
  journal->add_option("--key-prefix", journal_arguments.ops.key_prefix,
                      "The applications' redis::Options::key_prefix (flush; default: none)");
  journal->add_flag("--json", journal_arguments.ops.json,
                    "Print the result (or the failure) as one JSON object");
  journal->add_option("--dir", journal_arguments.directory,
                      "Journal directory (default: $PRODSAFE_JOURNAL_DIR, else "
                      "/var/tmp/prodsafe-journal-<uid>, as WrapperOptions::journal_directory)");
  journal->add_option("--namespace", journal_arguments.name_space,
                      "The wrappers' WrapperOptions::journal_namespace, if they set one");
  const TlsFlags journal_tls(*journal);
  add_action(*journal, "list", "Journal files and the results waiting in them (no Redis needed)",
             journal_arguments.action);
  add_action(*journal, "flush", "Commit the results of dead processes' journals for this Redis now",
             journal_arguments.action);

  DashboardArguments dashboard_arguments{.ops = {.url = default_url}};
  auto* dashboard = app.add_subcommand(
      "dashboard",
      "Serve a live web page of the fleet (breakers, retries, effects, runtime checks) until "
      "SIGINT or SIGTERM. Exit 0: stopped; 64: usage; 74: cannot listen; 78: host unknown");
  dashboard->add_option("--redis", dashboard_arguments.ops.url, std::string(redis_help));
  dashboard->add_option("--key-prefix", dashboard_arguments.ops.key_prefix,
                        "The applications' redis::Options::key_prefix (default: none)");
  const TlsFlags dashboard_tls(*dashboard);
  dashboard->add_option("--listen", dashboard_arguments.listen,
                        "host:port to serve on (default 127.0.0.1:8080; port 0: any free one)");
  dashboard->add_flag("--allow-remote", dashboard_arguments.allow_remote,
                      "Allow a non-loopback --listen address (set a token too)");
  dashboard->add_flag("--allow-actions", dashboard_arguments.allow_actions,
                      "Let the page force breakers open or closed, reset them and clear effect "
                      "records (each confirmed in the page and logged on stderr)");
  dashboard->add_option("--token-file", dashboard_arguments.token_file,
                        "A file whose first line is the bearer token the API requires (default: "
                        "$PRODSAFE_DASHBOARD_TOKEN, else none); open the page as "
                        "http://host:port/#token=TOKEN");
  dashboard->add_option("--refresh", dashboard_arguments.refresh,
                        "How often Redis is read, 200ms to 10m (default 1s)");
  dashboard->add_option("--window", dashboard_arguments.window,
                        "The breakers' time window, as their CircuitBreakerOptions (default 5m)");
  dashboard
      ->add_option("--buckets", dashboard_arguments.buckets,
                   "The breakers' window buckets, 1 to 1000 (default 10)")
      ->check(CLI::Range(1, 1000));
  dashboard
      ->add_option("--failure-threshold", dashboard_arguments.failure_threshold,
                   "The breakers' failure threshold, shown against their failures (default 10)")
      ->check(kUnsigned64);
  dashboard
      ->add_option("--scan-budget", dashboard_arguments.scan_budget,
                   "Keys asked of SCAN per refresh, in the one walk of the applications' keys "
                   "that finds effect records, breakers, histograms and windows, 500 to "
                   "1000000 (default 10000)")
      ->check(CLI::Range(500, 1000000));
  dashboard->add_option("--checks-every", dashboard_arguments.checks_every,
                        "How often the runtime checks run (default 30s)");

  // An unknown subcommand is named with the known ones (CLI11 would only say
  // that an argument was not expected).
  if (argc > 1 && argv[1][0] != '-') {
    const auto commands = app.get_subcommands([](CLI::App*) { return true; });
    const bool known_command = std::any_of(commands.begin(), commands.end(),
                                           [&](CLI::App* c) { return c->check_name(argv[1]); });
    if (!known_command) {
      std::string known;
      for (const CLI::App* command : commands) {
        if (command->get_group().empty()) continue;  // internal (chaos-worker)
        known += (known.empty() ? "" : ", ") + command->get_name();
      }
      std::cerr << "prodsafe: unknown command '" << argv[1] << "'; the commands are " << known
                << " (prodsafe --help)\n";
      return prodsafe::cli::kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version exit 0; every other parse error is a usage error,
    // said once: by CLI11 on stderr, or as JSON with `check --json`.
    if (error.get_exit_code() == 0) return app.exit(error) == 0 ? kExitOk : kExitUsage;
    const FailureOutput output = parse_failure_output(argc, argv);
    const Failure failure = usage_failure(error.what());
    if (output.json_on_stdout) return report(output, failure);
    (void)app.exit(error);
    write_failure_file(output, failure);
    return kExitUsage;
  }
  if (*chaos_worker) return run_chaos_worker(chaos_worker_spec);

  const std::string_view command = *demo        ? "demo"
                                   : *ping      ? "ping"
                                   : *check     ? "check"
                                   : *breaker   ? "breaker"
                                   : *effects   ? "effects"
                                   : *retry     ? "retry"
                                   : *journal   ? "journal"
                                   : *dashboard ? "dashboard"
                                                : "chaos";
  OpsArguments* ops = *breaker     ? &breaker_arguments.ops
                      : *effects   ? &effects_arguments.ops
                      : *retry     ? &retry_arguments.ops
                      : *journal   ? &journal_arguments.ops
                      : *dashboard ? &dashboard_arguments.ops
                                   : nullptr;
  const TlsFlags* ops_tls = *breaker     ? &breaker_tls
                            : *effects   ? &effects_tls
                            : *retry     ? &retry_tls
                            : *journal   ? &journal_tls
                            : *dashboard ? &dashboard_tls
                                         : nullptr;
  const FailureOutput failure_output =
      *chaos ? chaos_failure_output(chaos_arguments.json)
      : ops  ? ops_failure_output(command, ops->json, prodsafe::redis::redact_url(ops->url))
             : FailureOutput{.command = command};
  journal_arguments.redis_given = journal_redis->count() > 0;
  if (*journal && journal_arguments.action == "list" &&
      (journal_arguments.redis_given || journal_tls.given())) {
    return report(failure_output,
                  usage_failure("journal list reads local files only: it takes no --redis or "
                                "TLS flag (journal flush does)"));
  }

  // A malformed URL or a bad TLS setting is a usage error too, found before
  // anything runs; a TLS file that cannot be used is a configuration error.
  // check reports a URL it cannot parse itself, as JSON with --json.
  struct UrlFlags {
    const std::string* url = nullptr;
    const TlsFlags* tls = nullptr;
    prodsafe::redis::TlsOptions* options = nullptr;  // filled from `tls` for `url`
    FailureOutput output{};
  };
  prodsafe::redis::TlsOptions demo_tls_options;
  prodsafe::redis::TlsOptions ping_tls_options;
  UrlFlags given;
  if (*demo)
    given = {demo_url ? &*demo_url : nullptr, &demo_tls, &demo_tls_options, failure_output};
  if (*ping) given = {&ping_url, &ping_tls, &ping_tls_options, failure_output};
  if (*chaos) {
    given = {chaos_arguments.redis_url.empty() ? nullptr : &chaos_arguments.redis_url, &chaos_tls,
             &chaos_arguments.tls, failure_output};
  }
  if (ops != nullptr && !(*journal && journal_arguments.action == "list")) {
    given = {&ops->url, ops_tls, &ops->tls, failure_output};
  }
  if (*check) {
    given = {&check_arguments.url, &check_tls, &check_arguments.tls,
             check_failure_output(check_arguments.json,
                                  prodsafe::redis::redact_url(check_arguments.url))};
  }
  // Without --redis, demo and chaos start their own redis-servers; --tls
  // makes those TLS-only, with certificates the command makes and trusts, so
  // the other TLS flags have nothing to apply to.
  if (given.tls != nullptr && given.url == nullptr && given.tls->settings_given()) {
    return report(
        failure_output,
        usage_failure(fmt::format(
            "the TLS flags --cacert, --cacertdir, --cert, --key, --sni and --insecure apply to "
            "the Redis given with --redis URL; without --redis, {} starts its own redis-server "
            "(TLS only with --tls, with certificates it makes and trusts): give --redis "
            "rediss://host:port, or keep only --tls",
            command)));
  }
  const bool demo_embedded_tls = *demo && !demo_url && demo_tls.tls();
  chaos_arguments.embedded_tls = *chaos && chaos_arguments.redis_url.empty() && chaos_tls.tls();
  if (given.url != nullptr) {
    std::optional<prodsafe::redis::Endpoint> endpoint;
    try {
      endpoint = prodsafe::redis::parse_url(*given.url);
    } catch (const prodsafe::InvalidArgument& error) {
      if (!*check) return report(given.output, usage_failure(error.what()));
    }
    if (endpoint) {
      try {
        given.tls->check(*endpoint);
      } catch (const prodsafe::InvalidArgument& error) {
        return report(given.output, usage_failure(error.what()));
      } catch (const prodsafe::ConfigError& error) {
        return report(given.output, failure_of(error));
      }
      *given.options = given.tls->options(*endpoint);
    }
  }

  try {
    if (*demo) return run_foundation_demo(demo_url, demo_tls_options, demo_embedded_tls);
    if (*ping) {
      // The command reports its own failure; the library's log line about
      // the same connection would say it twice.
      prodsafe::logger()->set_level(spdlog::level::off);
      return run_ping(ping_url, ping_tls_options, ping_count);
    }
    if (*check) return run_check(check_arguments);
    if (*chaos) return run_chaos(chaos_arguments);
    if (*breaker) return run_breaker(breaker_arguments);
    if (*effects) return run_effects(effects_arguments);
    if (*retry) return run_retry_stats(retry_arguments);
    if (*journal) return run_journal(journal_arguments);
    if (*dashboard) return run_dashboard(dashboard_arguments);
  } catch (const std::exception& error) {
    return report(failure_output, failure_of(error));
  }
  return kExitFailed;
}
