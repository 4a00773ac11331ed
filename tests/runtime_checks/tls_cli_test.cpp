// The TLS flags of the prodsafe CLI (tools/prodsafe/tls_flags.hpp), run as a
// user would: every command that takes a Redis URL has them, and bad values
// stop the command before it connects anywhere. Nothing listens on port 1:
// a command that got as far as connecting would say "Connection refused".
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/cli_run.hpp"

namespace {

using prodsafe::testing::CliRun;
using prodsafe::testing::run_cli;

std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

constexpr int kUsage = 64;
constexpr int kConfig = 78;
constexpr int kUnreachable = 2;
// A file that exists and is readable (its content is not parsed by the checks).
constexpr const char* kReadable = PRODSAFE_CLI;

// Each command that takes a Redis URL, with `url` in its place.
std::vector<std::string> commands_with(const std::string& url) {
  return {"ping " + url, "check " + url, "demo --redis " + url,
          "chaos --quick --scenario retry_race --redis " + url};
}

TEST(TlsCliTest, ACertificateWithoutItsKeyIsAUsageErrorNamingBothFlags) {
  for (const std::string& command : commands_with("rediss://127.0.0.1:1")) {
    for (const std::string& flags :
         {std::string("--cert ") + kReadable, std::string("--key ") + kReadable}) {
      const CliRun run = run_cli(command + " " + flags);
      EXPECT_EQ(run.exit_code, kUsage) << command << " " << flags << "\n" << run.out;
      EXPECT_NE(run.out.find("set both --cert and --key, or neither"), std::string::npos)
          << command << "\n"
          << run.out;
      EXPECT_EQ(run.out.find("Connection refused"), std::string::npos) << "it connected\n"
                                                                       << run.out;
    }
  }
}

TEST(TlsCliTest, AMissingCaFileIsAConfigErrorNamingTheFileAndTheFlag) {
  for (const std::string& command : commands_with("rediss://127.0.0.1:1")) {
    const CliRun run = run_cli(command + " --cacert /nonexistent/ca.pem");
    EXPECT_EQ(run.exit_code, kConfig) << command << "\n" << run.out;
    EXPECT_NE(run.out.find("--cacert '/nonexistent/ca.pem' does not exist"), std::string::npos)
        << command << "\n"
        << run.out;
    EXPECT_EQ(run.out.find("Connection refused"), std::string::npos) << run.out;
  }
  const CliRun directory = run_cli("ping rediss://127.0.0.1:1 --cacertdir /nonexistent/certs");
  EXPECT_EQ(directory.exit_code, kConfig) << directory.out;
  EXPECT_NE(directory.out.find("--cacertdir '/nonexistent/certs'"), std::string::npos)
      << directory.out;
}

TEST(TlsCliTest, ABadServerNameIsAUsageError) {
  const CliRun run = run_cli("ping rediss://127.0.0.1:1 --sni 'redis host'");
  EXPECT_EQ(run.exit_code, kUsage) << run.out;
  EXPECT_NE(run.out.find("--sni 'redis host'"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("must be a host name"), std::string::npos) << run.out;
}

TEST(TlsCliTest, GoodSettingsGetAsFarAsConnecting) {
  for (const std::string& command : commands_with("rediss://127.0.0.1:1")) {
    const std::string flags = std::string("--cacert ") + kReadable + " --cert " + kReadable +
                              " --key " + kReadable + " --sni redis.example.com";
    const CliRun run = run_cli(command + " " + flags);
    EXPECT_EQ(run.exit_code, kUnreachable) << command << "\n" << run.out;
  }
  const CliRun forced = run_cli("ping redis://127.0.0.1:1 --tls --sni redis.example.com");
  EXPECT_EQ(forced.exit_code, kUnreachable) << forced.out;
}

// A CA, certificate or server name given for a plain redis:// URL would be
// ignored and the connection left in plain text: refused instead.
TEST(TlsCliTest, TlsFlagsForAPlainUrlAreRefused) {
  const CliRun run = run_cli(std::string("ping redis://127.0.0.1:1 --cacert ") + kReadable);
  EXPECT_EQ(run.exit_code, kUsage) << run.out;
  EXPECT_NE(run.out.find("--cacert is set but TLS is off"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("rediss://"), std::string::npos) << run.out;
}

TEST(TlsCliTest, AUnixSocketHasNoTls) {
  const CliRun run = run_cli("ping unix:///tmp/prodsafe-no-such.sock --tls");
  EXPECT_EQ(run.exit_code, kUsage) << run.out;
  EXPECT_NE(run.out.find("is a unix socket: TLS is only for TCP"), std::string::npos) << run.out;
}

// Without --redis, --tls makes the command's own server TLS-only
// (tls_server_cli_test.cpp); the other flags have nothing to apply to.
TEST(TlsCliTest, WithoutRedisTheDemoAndChaosRefuseTlsSettings) {
  for (const char* arguments :
       {"demo --tls --cacert /etc/hostname", "chaos --quick --cacert /etc/hostname"}) {
    const CliRun run = run_cli(arguments);
    EXPECT_EQ(run.exit_code, kUsage) << arguments << "\n" << run.out;
    EXPECT_NE(run.out.find("give --redis rediss://host:port"), std::string::npos) << run.out;
  }
}

TEST(TlsCliTest, EnvironmentVariablesAreDefaultsAndFlagsWin) {
  const CliRun from_variable =
      run_cli("ping rediss://127.0.0.1:1", "PRODSAFE_TLS_CACERT=/nonexistent/env-ca.pem");
  EXPECT_EQ(from_variable.exit_code, kConfig) << from_variable.out;
  EXPECT_NE(from_variable.out.find("$PRODSAFE_TLS_CACERT '/nonexistent/env-ca.pem'"),
            std::string::npos)
      << from_variable.out;

  const CliRun flag_wins = run_cli(std::string("ping rediss://127.0.0.1:1 --cacert ") + kReadable,
                                   "PRODSAFE_TLS_CACERT=/nonexistent/env-ca.pem");
  EXPECT_EQ(flag_wins.exit_code, kUnreachable) << flag_wins.out;

  for (const char* variable : {"PRODSAFE_TLS_CERT", "PRODSAFE_TLS_KEY"}) {
    const CliRun half_pair =
        run_cli("ping rediss://127.0.0.1:1", std::string(variable) + "=" + kReadable);
    EXPECT_EQ(half_pair.exit_code, kUsage) << variable << "\n" << half_pair.out;
    EXPECT_NE(half_pair.out.find(std::string("$") + variable), std::string::npos) << half_pair.out;
  }
  const CliRun sni = run_cli("ping rediss://127.0.0.1:1", "PRODSAFE_TLS_SNI=bad_name");
  EXPECT_EQ(sni.exit_code, kUsage) << sni.out;
  const CliRun directory =
      run_cli("ping rediss://127.0.0.1:1", "PRODSAFE_TLS_CACERTDIR=/nonexistent/certs");
  EXPECT_EQ(directory.exit_code, kConfig) << directory.out;

  // A plain connection ignores the variables, so they can be set for a whole
  // environment.
  const CliRun plain =
      run_cli("ping redis://127.0.0.1:1", "PRODSAFE_TLS_CACERT=/nonexistent/env-ca.pem");
  EXPECT_EQ(plain.exit_code, kUnreachable) << plain.out;
}

TEST(TlsCliTest, InsecureWarnsOnce) {
  const std::string warning = "warning: --insecure";
  for (const std::string& command : commands_with("rediss://127.0.0.1:1")) {
    const CliRun run = run_cli(command + " --insecure");
    EXPECT_EQ(run.exit_code, kUnreachable) << command << "\n" << run.out;
    EXPECT_EQ(occurrences(run.out, warning), 1u) << command << "\n" << run.out;
  }
  const CliRun verified = run_cli("ping rediss://127.0.0.1:1");
  EXPECT_EQ(verified.out.find(warning), std::string::npos) << verified.out;
}

TEST(TlsCliTest, CheckWithJsonReportsTlsErrorsAsJson) {
  struct Case {
    std::string flags;
    int exit_code;
    const char* kind;
  };
  for (const Case& c : {Case{std::string("--cert ") + kReadable, kUsage, "usage"},
                        Case{"--cacert /nonexistent/ca.pem", kConfig, "config"}}) {
    const CliRun run = run_cli("check --json rediss://:hunter2@127.0.0.1:1 " + c.flags);
    EXPECT_EQ(run.exit_code, c.exit_code) << c.flags << "\n" << run.out;
    const auto json = nlohmann::json::parse(run.out, nullptr, false);
    ASSERT_FALSE(json.is_discarded()) << c.flags << "\n" << run.out;
    EXPECT_EQ(json["error"]["kind"], c.kind) << json;
    EXPECT_EQ(json["url"], "rediss://:***@127.0.0.1:1") << json;
    EXPECT_EQ(json["passed"], false) << json;
  }
}

TEST(TlsCliTest, HelpListsTheFlagsAndTheirVariables) {
  for (const char* command : {"ping", "check", "demo", "chaos"}) {
    const CliRun run = run_cli(std::string(command) + " --help");
    EXPECT_EQ(run.exit_code, 0) << command << "\n" << run.out;
    for (const char* expected : {"--tls", "--cacert", "--cacertdir", "--cert", "--key", "--sni",
                                 "--insecure", "$PRODSAFE_TLS_CACERT", "$PRODSAFE_TLS_CACERTDIR",
                                 "$PRODSAFE_TLS_CERT", "$PRODSAFE_TLS_KEY", "$PRODSAFE_TLS_SNI"}) {
      EXPECT_NE(run.out.find(expected), std::string::npos) << command << ": " << expected;
    }
  }
}

}  // namespace
#include "support/cli_run.hpp"
