// `prodsafe dashboard`: the flags checked, the server started, and the
// process kept serving until SIGINT or SIGTERM.
#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "dashboard_server.hpp"
#include "ops_commands.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/redis/endpoint.hpp"

namespace prodsafe::cli {
namespace {

// The token from --token-file (its first line), else from
// $PRODSAFE_DASHBOARD_TOKEN; empty for none. A token on the command line
// would show in `ps`.
std::string read_token(const std::string& file) {
  std::string token;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) throw IoError(fmt::format("cannot read --token-file {}", file));
    std::getline(in, token);
    if (token.empty()) {
      throw InvalidArgument(
          fmt::format("--token-file {} is empty: put the token on its first line", file));
    }
  } else if (const char* env = std::getenv("PRODSAFE_DASHBOARD_TOKEN")) {
    token = env;
  }
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  for (char c : token) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
      throw InvalidArgument("the dashboard token must be printable, without spaces");
    }
  }
  return token;
}

}  // namespace

int run_dashboard(const DashboardArguments& arguments) {
  const FailureOutput output{.command = "dashboard"};
  const auto listen = parse_listen(arguments.listen);
  if (!listen) {
    return report(output, usage_failure(fmt::format(
                              "--listen must be host:port (127.0.0.1:8080, [::1]:8080), not '{}'",
                              arguments.listen)));
  }
  const auto refresh = parse_duration(arguments.refresh);
  if (!refresh || *refresh < std::chrono::milliseconds(200) ||
      *refresh > std::chrono::minutes(10)) {
    return report(output, usage_failure(fmt::format(
                              "--refresh must be a duration from 200ms to 10m, not '{}'",
                              arguments.refresh)));
  }
  const auto window = parse_duration(arguments.window);
  if (!window || window->count() == 0) {
    return report(output, usage_failure(fmt::format(
                              "--window must be a duration such as 30s, 5m or 1h, not '{}'",
                              arguments.window)));
  }
  const auto checks_every = parse_duration(arguments.checks_every);
  if (!checks_every || *checks_every < std::chrono::seconds(1)) {
    return report(output, usage_failure(fmt::format(
                              "--checks-every must be a duration of at least 1s, not '{}'",
                              arguments.checks_every)));
  }
  if (!arguments.allow_remote && !is_loopback_host(listen->first)) {
    return report(output,
                  usage_failure(fmt::format(
                      "--listen {} is not a loopback address: the dashboard shows the fleet's "
                      "state to whoever reaches it. Pass --allow-remote (and set a token with "
                      "--token-file or $PRODSAFE_DASHBOARD_TOKEN) to serve it there",
                      arguments.listen)));
  }
  DashboardServerOptions options{.ops = arguments.ops,
                                 .host = listen->first,
                                 .port = listen->second,
                                 .allow_remote = arguments.allow_remote,
                                 .allow_actions = arguments.allow_actions,
                                 .refresh = *refresh};
  options.view.rules.time_window = *window;
  options.view.rules.window_buckets = arguments.buckets;
  options.view.rules.failure_threshold = arguments.failure_threshold;
  options.view.scan_budget = arguments.scan_budget;
  options.view.checks_every = *checks_every;
  try {
    options.token = read_token(arguments.token_file);
  } catch (const InvalidArgument& error) {
    return report(output, usage_failure(error.what()));
  } catch (const std::exception& error) {
    return report(output, failure_of(error));
  }
  if (arguments.allow_remote && arguments.allow_actions && options.token.empty()) {
    return report(output, usage_failure("--allow-remote with --allow-actions needs a token "
                                        "(--token-file FILE or $PRODSAFE_DASHBOARD_TOKEN): "
                                        "anyone who reaches the port could act on the fleet"));
  }
  logger()->set_level(spdlog::level::off);  // the page shows what goes wrong

  // SIGINT and SIGTERM are waited for, not handled: blocked here before any
  // thread starts (threads inherit the mask), then taken with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  try {
    DashboardServer server(std::move(options));
    std::cout << fmt::format("prodsafe dashboard for {} at {}{}\n",
                             redis::redact_url(arguments.ops.url), server.url(),
                             arguments.allow_actions ? " (actions allowed)" : " (read-only)")
              << std::flush;
    int signal = 0;
    sigwait(&stop_signals, &signal);
    std::cout << "prodsafe dashboard: stopping\n" << std::flush;
  } catch (const std::exception& error) {
    return report(output, failure_of(error));
  }
  return kExitOk;
}

}  // namespace prodsafe::cli
