// The prodsafe CLI run as a user would: exit codes, JSON, messages.
#include <sys/wait.h>

#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/redis/client.hpp"
#include "support/cli_run.hpp"

namespace {

using prodsafe::embedded::RedisServer;
using prodsafe::testing::CliRun;
using prodsafe::testing::run_cli;
using prodsafe::testing::run_cli_command;

TEST(CheckCliTest, SafeServerExitsZero) {
  RedisServer server({.config = {"appendonly yes", "appendfsync always"}});
  const CliRun run = run_cli("check " + server.url() + " --latency-samples 3");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("persistence"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("\033["), std::string::npos) << "no colour when not on a terminal";
}

// On a terminal (util-linux `script` gives the CLI a pseudo-terminal) the
// table is coloured, unless NO_COLOR is set (no-color.org: any non-empty
// value) or TERM is "dumb".
TEST(CheckCliTest, ColourOnATerminalUnlessNoColorOrDumbTerm) {
  RedisServer server({.config = {"appendonly yes", "appendfsync always"}});
  auto on_terminal = [&](const std::string& environment) {
    const std::string command =
        std::string(PRODSAFE_CLI) + " check " + server.url() + " --latency-samples 0";
    return run_cli_command("env " + environment + " script -qec '" + command + "' /dev/null");
  };
  const CliRun plain_term = on_terminal("-u NO_COLOR TERM=xterm");
  EXPECT_EQ(plain_term.exit_code, 0) << plain_term.out;
  EXPECT_NE(plain_term.out.find("\033["), std::string::npos)
      << "coloured on a terminal: " << plain_term.out;
  for (const char* environment : {"NO_COLOR=1 TERM=xterm", "-u NO_COLOR TERM=dumb"}) {
    const CliRun run = on_terminal(environment);
    EXPECT_EQ(run.exit_code, 0) << environment << ": " << run.out;
    EXPECT_NE(run.out.find("persistence"), std::string::npos) << environment << ": " << run.out;
    EXPECT_EQ(run.out.find("\033["), std::string::npos) << environment << ": " << run.out;
  }
}

TEST(CheckCliTest, UnsafeServerExitsOneAndFailAtMoves) {
  RedisServer server({.config = {"appendonly yes", "appendfsync everysec", "maxmemory 64mb",
                                 "maxmemory-policy volatile-lru"}});
  EXPECT_EQ(run_cli("check " + server.url()).exit_code, 1);  // ERROR >= error
  EXPECT_EQ(run_cli("check " + server.url() + " --fail-at critical").exit_code, 0);
  EXPECT_EQ(run_cli("check " + server.url() + " --fail-at warning --strict-durability").exit_code,
            1);
}

// The default gate fails setups that lose acknowledged claims on a crash; a
// deliberate --fail-at still moves it.
TEST(CheckCliTest, SetupsThatLoseAcknowledgedClaimsFailTheDefaultGate) {
  RedisServer rdb_only({.config = {"appendonly no", "save 900 1"}});
  const CliRun rdb = run_cli("check " + rdb_only.url() + " --latency-samples 0");
  EXPECT_EQ(rdb.exit_code, 1) << rdb.out;
  EXPECT_NE(rdb.out.find("CRITICAL  persistence"), std::string::npos) << rdb.out;
  RedisServer no_fsync({.config = {"appendonly yes", "appendfsync no"}});
  const CliRun unsynced = run_cli("check " + no_fsync.url() + " --latency-samples 0");
  EXPECT_EQ(unsynced.exit_code, 1) << unsynced.out;
  EXPECT_NE(unsynced.out.find("ERROR     persistence"), std::string::npos) << unsynced.out;
  EXPECT_EQ(
      run_cli("check " + no_fsync.url() + " --latency-samples 0 --fail-at critical").exit_code, 0);
  RedisServer everysec({.config = {"appendonly yes", "appendfsync everysec"}});
  EXPECT_EQ(run_cli("check " + everysec.url() + " --latency-samples 0").exit_code, 0);
  EXPECT_EQ(
      run_cli("check " + everysec.url() + " --latency-samples 0 --strict-durability").exit_code, 1);
}

TEST(CheckCliTest, JsonOutputHasEveryResultAndTheSummary) {
  RedisServer server({.config = {"maxmemory 64mb", "maxmemory-policy allkeys-lru"}});
  const CliRun run = run_cli("check " + server.url() + " --json --latency-samples 0");
  EXPECT_EQ(run.exit_code, 1);
  const auto json = nlohmann::json::parse(run.out);
  EXPECT_EQ(json["url"], server.url());
  EXPECT_EQ(json["passed"], false);
  EXPECT_EQ(json["fail_at"], "ERROR");
  EXPECT_EQ(json["summary"]["total_checks"], 7);
  EXPECT_EQ(json["results"].size(), 7u);
  bool found = false;
  for (const auto& result : json["results"]) {
    if (result["name"] == "eviction_policy") {
      found = true;
      EXPECT_EQ(result["level"], "CRITICAL");
      EXPECT_FALSE(result["remediation"].get<std::string>().empty());
    }
  }
  EXPECT_TRUE(found);
}

TEST(CheckCliTest, UnreachableServerExitsTwoWithRedactedUrl) {
  int port = 0;
  {
    RedisServer gone;
    port = gone.port();
  }
  const CliRun run = run_cli("check redis://:hunter2@127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(run.exit_code, 2) << run.out;
  EXPECT_NE(run.out.find("redis://:***@127.0.0.1:" + std::to_string(port)), std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("Connection refused"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("hunter2"), std::string::npos) << run.out;
}

// With --json a failure is JSON too (on stdout, printed once), with the
// schema version and the exit code; results carry a numeric severity beside
// the level's name.
TEST(CheckCliTest, WithJsonFailuresAreJsonAndCarryTheSchemaVersion) {
  int port = 0;
  {
    RedisServer gone;
    port = gone.port();
  }
  struct Case {
    std::string arguments;
    int exit_code;
    const char* kind;
  };
  for (const Case& failure :
       {Case{"check --json redis://:hunter2@127.0.0.1:" + std::to_string(port), 2, "unreachable"},
        Case{"check --json not-a-url", 64, "usage"},
        Case{"check --json redis://127.0.0.1:1 --fail-at fatal", 64, "usage"}}) {
    const CliRun run = run_cli(failure.arguments);
    EXPECT_EQ(run.exit_code, failure.exit_code) << failure.arguments << "\n" << run.out;
    const auto json = nlohmann::json::parse(run.out, nullptr, false);
    ASSERT_FALSE(json.is_discarded()) << failure.arguments << "\n" << run.out;
    EXPECT_EQ(json["schema_version"], 1) << run.out;
    EXPECT_EQ(json["passed"], false) << run.out;
    EXPECT_EQ(json["exit_code"], failure.exit_code) << run.out;
    EXPECT_EQ(json["error"]["kind"], failure.kind) << run.out;
    EXPECT_FALSE(json["error"]["message"].get<std::string>().empty()) << run.out;
    EXPECT_EQ(run.out.find("hunter2"), std::string::npos) << run.out;
  }
  RedisServer server({.config = {"maxmemory 64mb", "maxmemory-policy allkeys-lru"}});
  const CliRun run = run_cli("check " + server.url() + " --json --latency-samples 0");
  const auto json = nlohmann::json::parse(run.out);
  EXPECT_EQ(json["schema_version"], 1);
  EXPECT_EQ(json["exit_code"], 1);
  EXPECT_EQ(json["fail_at_severity"], 2);
  for (const auto& result : json["results"]) {
    if (result["name"] == "eviction_policy") {
      EXPECT_EQ(result["severity"], 3) << result;
    }
  }
}

// The version comes from CMake's project() (PRODSAFE_EXPECTED_VERSION here),
// with no subcommand needed.
TEST(CliTest, VersionPrintsTheProjectVersionAndExitsZero) {
  const CliRun run = run_cli("--version");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(run.out, std::string("prodsafe ") + PRODSAFE_EXPECTED_VERSION + "\n");
}

// Exit codes, the same on every command: 64 (EX_USAGE) for a usage error --
// a bad flag or value, an unknown subcommand, a malformed URL -- before
// anything runs; 2 only for a Redis that cannot be reached.
constexpr int kUsageError = 64;

TEST(CliUsageTest, UsageErrorsExit64OnEveryCommand) {
  for (const char* arguments :
       {"check not-a-url", "check redis://127.0.0.1:1 --fail-at fatal", "ping not-a-url",
        "ping redis://127.0.0.1:1 --no-such-flag", "demo --redis http://127.0.0.1:1",
        "chaos --redis not-a-url --quick", "check redis://127.0.0.1:1 --latency-samples -3", "",
        "--no-such-flag"}) {
    const CliRun run = run_cli(arguments);
    EXPECT_EQ(run.exit_code, kUsageError) << "'" << arguments << "'\n" << run.out;
    EXPECT_EQ(run.out.find("cannot reach"), std::string::npos) << arguments << "\n" << run.out;
  }
}

TEST(CliUsageTest, AnUnknownSubcommandNamesItselfAndTheKnownOnes) {
  const CliRun run = run_cli("chekc redis://127.0.0.1:1");
  EXPECT_EQ(run.exit_code, kUsageError) << run.out;
  for (const char* expected : {"chekc", "check", "ping", "demo", "chaos"}) {
    EXPECT_NE(run.out.find(expected), std::string::npos) << expected << "\n" << run.out;
  }
  EXPECT_EQ(run.out.find("chaos-worker"), std::string::npos) << "internal: " << run.out;
}

TEST(CliUsageTest, HelpExitsZero) {
  const CliRun run = run_cli("--help");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("Subcommands"), std::string::npos) << run.out;
}

// A numeric flag out of its range is refused before anything runs, as a
// usage error like every other in the CLI (`ping -n 0`'s exit code), naming
// the flag and its range. Nothing listens on port 1: a command that ran would
// say it cannot reach Redis.
TEST(CliUsageTest, NumericFlagsOutOfRangeAreRefusedBeforeAnythingRuns) {
  const int usage_error = kUsageError;
  struct Case {
    const char* arguments;
    const char* flag;
    const char* range;
  };
  // -3 used to wrap to 2^64 - 3 and ping forever; a negative seed wrapped too.
  for (const Case& bad :
       {Case{"check redis://127.0.0.1:1 --latency-samples -3", "--latency-samples", "0 to 1000000"},
        Case{"check redis://127.0.0.1:1 --latency-samples 1000001", "--latency-samples",
             "0 to 1000000"},
        Case{"ping redis://127.0.0.1:1 -n -3", "--count", "1 to 1000000"},
        Case{"chaos --list --seed -1", "--seed", "0 to 18446744073709551615"}}) {
    const CliRun run = run_cli(bad.arguments);
    EXPECT_EQ(run.exit_code, usage_error) << bad.arguments << "\n" << run.out;
    EXPECT_NE(run.out.find(bad.flag), std::string::npos) << bad.arguments << "\n" << run.out;
    EXPECT_NE(run.out.find(bad.range), std::string::npos) << bad.arguments << "\n" << run.out;
    EXPECT_EQ(run.out.find("cannot"), std::string::npos) << bad.arguments << "\n" << run.out;
    EXPECT_EQ(run.out.find("kill_redis"), std::string::npos) << "the scenarios were listed";
  }
}

// `demo --redis URL` runs against a Redis the user gave it: it leaves that
// Redis as it found it (its own keys, under prodsafe:demo:, removed), and
// never touches the user's keys.
TEST(DemoCliTest, DemoAgainstAGivenRedisRemovesTheKeysItMade) {
  RedisServer server({.config = {"appendonly yes", "appendfsync always"}});
  prodsafe::redis::Client client(server.url());
  client.command({"SET", "users:key", "keep"});
  const CliRun run = run_cli("demo --redis " + server.url());
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(client.command({"DBSIZE"}).integer(), 1) << run.out;
  EXPECT_EQ(client.get("users:key").value_or("gone"), "keep");
}

TEST(CheckCliTest, DefaultUrlComesFromTheEnvironment) {
  RedisServer server({.config = {"appendonly yes", "appendfsync always"}});
  ::setenv("REDIS_URL", server.url().c_str(), 1);
  const CliRun from_env = run_cli("check --latency-samples 0 --json");
  ::unsetenv("REDIS_URL");
  EXPECT_EQ(from_env.exit_code, 0) << from_env.out;
  EXPECT_EQ(nlohmann::json::parse(from_env.out)["url"], server.url());
}

// How often `needle` occurs in `text`.
std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

// A path for a JSON report that no earlier run left behind.
std::filesystem::path fresh_report_path() {
  static int next = 0;
  const auto path =
      std::filesystem::temp_directory_path() /
      ("prodsafe-cli-test-" + std::to_string(::getpid()) + "-" + std::to_string(next++) + ".json");
  std::filesystem::remove(path);
  return path;
}

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(path);
  return nlohmann::json::parse(text, nullptr, false);
}

// A local failure is not an unreachable Redis: 74 (sysexits' EX_IOERR) for a
// file or directory that cannot be made or written, 78 (EX_CONFIG) for a
// configuration that names something missing (here: no redis-server in PATH
// for the demo's private server).
TEST(CliExitCodeTest, LocalFailuresExit74AndConfigurationErrors78) {
  const CliRun io =
      run_cli("chaos --quick --scenario retry_race --work-dir /proc/prodsafe-cannot-write-here");
  EXPECT_EQ(io.exit_code, 74) << io.out;
  EXPECT_NE(io.out.find("/proc/prodsafe-cannot-write-here"), std::string::npos) << io.out;

  const CliRun config =
      run_cli_command("env PATH=/nonexistent " + std::string(PRODSAFE_CLI) + " demo");
  EXPECT_EQ(config.exit_code, 78) << config.out;
  EXPECT_EQ(occurrences(config.out, "not in PATH"), 1u) << "printed once:\n" << config.out;
}

// The library's own log line about a failure is not printed beside the
// command's report of it.
TEST(CliExitCodeTest, AnUnreachableRedisIsReportedOnce) {
  for (const char* arguments :
       {"ping redis://127.0.0.1:1", "check redis://127.0.0.1:1",
        "chaos --quick --redis redis://127.0.0.1:1", "demo --redis redis://127.0.0.1:1"}) {
    const CliRun run = run_cli(arguments);
    EXPECT_EQ(run.exit_code, 2) << arguments << "\n" << run.out;
    EXPECT_EQ(occurrences(run.out, "Connection refused"), 1u) << arguments << ": printed once\n"
                                                              << run.out;
  }
}

// A Redis that answers but refuses us (AUTH) cannot be used either: 2 on
// every command, as an unreachable one.
TEST(CliExitCodeTest, ARefusedPasswordExitsTwoOnEveryCommand) {
  RedisServer server({.config = {"requirepass right-password"}});
  const std::string url = "redis://:wrong-password@127.0.0.1:" + std::to_string(server.port());
  for (const std::string command :
       {"ping ", "check ", "chaos --quick --scenario retry_race --redis "}) {
    const CliRun run = run_cli(command + url);
    EXPECT_EQ(run.exit_code, 2) << command << "\n" << run.out;
    EXPECT_EQ(occurrences(run.out, "WRONGPASS"), 1u) << command << ": printed once\n" << run.out;
    EXPECT_EQ(run.out.find("wrong-password"), std::string::npos) << run.out;
  }
}

// `check --json`: a flag the parser refuses is a usage error reported as
// JSON on stdout, and nothing else is printed.
TEST(CheckCliTest, WithJsonParseErrorsAreJsonToo) {
  for (const char* arguments : {"check --json redis://127.0.0.1:1 --latency-samples -3",
                                "check --json redis://127.0.0.1:1 --no-such-flag"}) {
    const CliRun run = run_cli(arguments);
    EXPECT_EQ(run.exit_code, 64) << arguments << "\n" << run.out;
    const auto json = nlohmann::json::parse(run.out, nullptr, false);
    ASSERT_FALSE(json.is_discarded()) << arguments << "\n" << run.out;
    EXPECT_EQ(json["schema_version"], 1) << run.out;
    EXPECT_EQ(json["exit_code"], 64) << run.out;
    EXPECT_EQ(json["passed"], false) << run.out;
    EXPECT_EQ(json["error"]["kind"], "usage") << run.out;
    EXPECT_FALSE(json["error"]["message"].get<std::string>().empty()) << run.out;
  }
}

// `chaos --json FILE`: the report carries the schema version and the exit
// code, and a run that cannot start writes its failure there as JSON too
// (and says it once on stderr).
TEST(ChaosCliTest, WithJsonFailuresAreWrittenAsJsonToo) {
  struct Case {
    std::string arguments;
    int exit_code;
    const char* kind;
  };
  for (const Case& failure :
       {Case{"--quick --scenario no_such_scenario", 64, "usage"},
        Case{"--quick --redis not-a-url", 64, "usage"}, Case{"--quick --seed -1", 64, "usage"},
        Case{"--quick --scenario retry_race --redis redis://:hunter2@127.0.0.1:1", 2,
             "unreachable"},
        Case{"--quick --scenario retry_race --work-dir /proc/prodsafe-cannot-write-here", 74,
             "io"}}) {
    const auto report = fresh_report_path();
    const CliRun run = run_cli("chaos --json " + report.string() + " " + failure.arguments);
    EXPECT_EQ(run.exit_code, failure.exit_code) << failure.arguments << "\n" << run.out;
    const auto json = read_json(report);
    ASSERT_FALSE(json.is_discarded()) << failure.arguments << "\n" << run.out;
    EXPECT_EQ(json["schema_version"], 1) << json;
    EXPECT_EQ(json["ok"], false) << json;
    EXPECT_EQ(json["exit_code"], failure.exit_code) << json;
    EXPECT_EQ(json["error"]["kind"], failure.kind) << json;
    const std::string message = json["error"]["message"].get<std::string>();
    EXPECT_FALSE(message.empty()) << json;
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << json;
    EXPECT_EQ(occurrences(run.out, message.substr(0, 40)), 1u) << "printed once\n" << run.out;
  }
  const auto report = fresh_report_path();
  const CliRun run = run_cli("chaos --quick --scenario retry_race --json " + report.string());
  EXPECT_EQ(run.exit_code, 0) << run.out;
  const auto json = read_json(report);
  EXPECT_EQ(json["schema_version"], 1) << json;
  EXPECT_EQ(json["exit_code"], 0) << json;
  EXPECT_EQ(json["ok"], true) << json;
  EXPECT_EQ(json["scenarios"].size(), 1u) << json;
}

}  // namespace
