// `prodsafe dashboard` run as a user would: flags it refuses (exit 64), and
// a running dashboard stopped by SIGTERM or SIGINT (exit 0, promptly), its
// actions logged on stderr.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/redis/client.hpp"
#include "support/cli_run.hpp"
#include "support/raw_http.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using prodsafe::testing::CliRun;
using prodsafe::testing::raw_exchange;
using prodsafe::testing::run_cli;
using prodsafe::testing::SteadyClock;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(DashboardCliTest, ANonLoopbackAddressNeedsAllowRemote) {
  const CliRun run = run_cli("dashboard --listen 0.0.0.0:0 --redis redis://127.0.0.1:1");
  EXPECT_EQ(run.exit_code, 64) << run.out;
  EXPECT_TRUE(contains(run.out, "not a loopback address")) << run.out;
  EXPECT_TRUE(contains(run.out, "--allow-remote")) << run.out;
}

TEST(DashboardCliTest, BadFlagsExit64NamingTheFlag) {
  for (const char* refresh : {"100ms", "11m", "abc", "-1s", "1.5s"}) {
    const CliRun run = run_cli(std::string("dashboard --listen 127.0.0.1:0 --refresh ") + refresh);
    EXPECT_EQ(run.exit_code, 64) << refresh << ": " << run.out;
    EXPECT_TRUE(contains(run.out, "--refresh")) << run.out;
  }
  for (const char* listen : {"nonsense", "127.0.0.1:70000", "::1:8080", "127.0.0.1:"}) {
    const CliRun run = run_cli(std::string("dashboard --listen '") + listen + "'");
    EXPECT_EQ(run.exit_code, 64) << listen << ": " << run.out;
    EXPECT_TRUE(contains(run.out, "--listen")) << run.out;
  }
  EXPECT_EQ(run_cli("dashboard --listen 127.0.0.1:0 --window 0s").exit_code, 64);
  EXPECT_EQ(run_cli("dashboard --listen 127.0.0.1:0 --checks-every 10ms").exit_code, 64);
  EXPECT_EQ(run_cli("dashboard --listen 127.0.0.1:0 --scan-budget 1").exit_code, 64);
}

TEST(DashboardCliTest, RemoteActionsWithoutATokenExit64) {
  const CliRun run = run_cli(
      "dashboard --listen 127.0.0.1:0 --allow-remote --allow-actions --redis redis://127.0.0.1:1",
      "-u PRODSAFE_DASHBOARD_TOKEN");
  EXPECT_EQ(run.exit_code, 64) << run.out;
  EXPECT_TRUE(contains(run.out, "needs a token")) << run.out;
}

TEST(DashboardCliTest, ABadTokenExit64) {
  const auto empty =
      std::filesystem::temp_directory_path() / ("dashboard-token-" + std::to_string(::getpid()));
  std::ofstream(empty).close();
  CliRun run = run_cli("dashboard --listen 127.0.0.1:0 --token-file " + empty.string());
  EXPECT_EQ(run.exit_code, 64) << run.out;
  EXPECT_TRUE(contains(run.out, "is empty")) << run.out;
  std::filesystem::remove(empty);
  run = run_cli("dashboard --listen 127.0.0.1:0", "'PRODSAFE_DASHBOARD_TOKEN=has space'");
  EXPECT_EQ(run.exit_code, 64) << run.out;
}

// A `prodsafe dashboard` child with its stdout and stderr on pipes.
class Dashboard {
 public:
  explicit Dashboard(const std::vector<std::string>& arguments) {
    int out[2];
    int err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    std::vector<std::string> all = {PRODSAFE_CLI, "dashboard"};
    all.insert(all.end(), arguments.begin(), arguments.end());
    std::vector<char*> argv;
    for (std::string& argument : all) argv.push_back(argument.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, PRODSAFE_CLI, &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  ~Dashboard() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
    if (err_ >= 0) ::close(err_);
  }

  // The port from the first line it prints ("... at http://127.0.0.1:PORT/ ..."), or -1.
  int port() {
    std::string line;
    const auto deadline = SteadyClock::now() + 10s;
    while (!contains(line, "\n") && SteadyClock::now() < deadline) {
      pollfd polled{out_, POLLIN, 0};
      if (::poll(&polled, 1, 100) <= 0) continue;
      char c = 0;
      if (::read(out_, &c, 1) != 1) break;
      line.push_back(c);
    }
    const auto at = line.find("http://127.0.0.1:");
    if (at == std::string::npos) {
      ADD_FAILURE() << "no URL in '" << line << "'";
      return -1;
    }
    return std::stoi(line.substr(at + 17));
  }

  // Sends `signal` and waits at most `limit` for the exit: its code, or -1
  // when it did not exit (or was killed by a signal).
  int stop(int signal, std::chrono::milliseconds limit) {
    ::kill(pid_, signal);
    const auto deadline = SteadyClock::now() + limit;
    while (SteadyClock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

  // Everything on stderr so far (after it exited: all of it).
  std::string stderr_text() {
    std::string text;
    char buffer[4096];
    for (;;) {
      pollfd polled{err_, POLLIN, 0};
      if (::poll(&polled, 1, 0) <= 0) break;
      const ssize_t got = ::read(err_, buffer, sizeof(buffer));
      if (got <= 0) break;
      text.append(buffer, static_cast<std::size_t>(got));
    }
    return text;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
};

TEST(DashboardCliTest, SigtermStopsItPromptlyWithExit0AndActionsAreLogged) {
  prodsafe::embedded::RedisServer redis;
  // A breaker the page would list (actions apply to existing breakers only).
  prodsafe::redis::Client(redis.url()).command({"HSET", "circuit:pay", "state", "CLOSED"});
  Dashboard dashboard(
      {"--redis", redis.url(), "--listen", "127.0.0.1:0", "--refresh", "200ms", "--allow-actions"});
  const int port = dashboard.port();
  ASSERT_GT(port, 0);
  EXPECT_EQ(raw_exchange(port, "GET /healthz HTTP/1.1\r\n\r\n").body, "ok\n");
  const std::string body = R"({"job_type":"pay","action":"open"})";
  const auto reply = raw_exchange(port,
                                  "POST /api/actions/breaker HTTP/1.1\r\nContent-Type: "
                                  "application/json\r\nContent-Length: " +
                                      std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(reply.status, 200) << reply.raw;
  const auto started = SteadyClock::now();
  EXPECT_EQ(dashboard.stop(SIGTERM, 5s), 0);
  EXPECT_LT(SteadyClock::now() - started, 3s);
  const std::string log = dashboard.stderr_text();
  EXPECT_TRUE(contains(log, "prodsafe dashboard: action from 127.0.0.1:")) << log;
  EXPECT_TRUE(contains(log, "breaker open pay: CLOSED -> FORCED_OPEN")) << log;
}

TEST(DashboardCliTest, SigintStopsItEvenWithRedisUnreachable) {
  Dashboard dashboard({"--redis", "redis://127.0.0.1:1", "--listen", "127.0.0.1:0"});
  const int port = dashboard.port();
  ASSERT_GT(port, 0);
  EXPECT_TRUE(prodsafe::testing::eventually([&] {
    return raw_exchange(port, "GET /api/state HTTP/1.1\r\n\r\n").body.find("\"reachable\":false") !=
           std::string::npos;
  }));
  const auto started = SteadyClock::now();
  EXPECT_EQ(dashboard.stop(SIGINT, 5s), 0);
  EXPECT_LT(SteadyClock::now() - started, 3s);
}

// Redis hung (SIGSTOP): a refresh waits for the client's timeouts (2 s),
// and the dashboard still stops soon after the signal.
TEST(DashboardCliTest, SigtermStopsItWhileARefreshWaitsForAHungRedis) {
  prodsafe::embedded::RedisServer redis;
  redis.pause();
  Dashboard dashboard({"--redis", redis.url(), "--listen", "127.0.0.1:0"});
  const int port = dashboard.port();
  ASSERT_GT(port, 0);
  EXPECT_NE(raw_exchange(port, "GET /api/state HTTP/1.1\r\n\r\n").body.find("\"loading\":true"),
            std::string::npos);
  const auto started = SteadyClock::now();
  EXPECT_EQ(dashboard.stop(SIGTERM, 8s), 0);
  EXPECT_LT(SteadyClock::now() - started, 5s);
  redis.resume();
}

}  // namespace
