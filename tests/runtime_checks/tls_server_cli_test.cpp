// The prodsafe CLI against TLS redis-servers this test starts (TLS only, with
// certificates made by embedded::make_test_certificates): ping and check
// speak TLS with the CA given by flag or environment, refuse a server they
// cannot verify, and present a client certificate when the server demands
// one; demo --tls and chaos --tls run their own servers on TLS only.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/embedded/test_certificates.hpp"
#include "support/cli_run.hpp"

namespace {

namespace fs = std::filesystem;
using prodsafe::embedded::RedisServer;
using prodsafe::embedded::RedisServerTls;
using prodsafe::embedded::TestCertificates;

using prodsafe::testing::CliRun;
using prodsafe::testing::run_cli;

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kConfig = 78;

class TlsServerCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (fs::temp_directory_path() / "prodsafe-tls-cli-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
    certs_ = prodsafe::embedded::make_test_certificates(directory_ / "certificates");
  }
  static void TearDownTestSuite() { fs::remove_all(directory_); }

  static RedisServerTls server_tls(bool auth_clients = false) {
    return {.cert_file = certs_.server_cert,
            .key_file = certs_.server_key,
            .ca_file = certs_.ca_cert,
            .auth_clients = auth_clients};
  }
  static std::string ca() { return certs_.ca_cert.string(); }

  static fs::path directory_;
  static TestCertificates certs_;
};

fs::path TlsServerCliTest::directory_;
TestCertificates TlsServerCliTest::certs_;

TEST_F(TlsServerCliTest, PingSpeaksTlsWithTheGivenCa) {
  RedisServer server({.tls = server_tls()});
  ASSERT_TRUE(server.url().starts_with("rediss://")) << server.url();
  const CliRun run = run_cli("ping " + server.url() + " -n 10 --cacert " + ca());
  EXPECT_EQ(run.exit_code, kOk) << run.out;
  EXPECT_TRUE(contains(run.out, server.url() + ": Redis ")) << run.out;
  EXPECT_TRUE(contains(run.out, "over 10 round trips")) << run.out;

  // The same server without its CA: the system's store does not trust it.
  const CliRun untrusted = run_cli("ping " + server.url() + " -n 1");
  EXPECT_EQ(untrusted.exit_code, kConfig) << untrusted.out;
}

TEST_F(TlsServerCliTest, AServerSignedByAnotherCaIsAConfigErrorSayingWhatToDo) {
  RedisServer server({.tls = server_tls()});
  const CliRun run =
      run_cli("ping " + server.url() + " -n 1 --cacert " + certs_.other_ca_cert.string());
  EXPECT_EQ(run.exit_code, kConfig) << run.out;
  EXPECT_TRUE(contains(run.out, "not trusted")) << run.out;
  EXPECT_TRUE(contains(run.out, "--cacert")) << run.out;
  EXPECT_FALSE(contains(run.out, "PING p50")) << run.out;
}

TEST_F(TlsServerCliTest, InsecureConnectsToAServerWhoseCaIsNotGivenAndWarns) {
  RedisServer server({.tls = server_tls()});
  const CliRun run = run_cli("ping " + server.url() + " -n 1 --insecure");
  EXPECT_EQ(run.exit_code, kOk) << run.out;
  EXPECT_TRUE(contains(run.out, "warning: --insecure")) << run.out;
  EXPECT_TRUE(contains(run.out, "PING p50")) << run.out;
}

TEST_F(TlsServerCliTest, TheCaAndClientCertificateCanComeFromTheEnvironment) {
  RedisServer server({.tls = server_tls(/*auth_clients=*/true)});
  const std::string ca_variable = "PRODSAFE_TLS_CACERT=" + ca();
  const std::string client_variables = " PRODSAFE_TLS_CERT=" + certs_.client_cert.string() +
                                       " PRODSAFE_TLS_KEY=" + certs_.client_key.string();

  const CliRun run = run_cli("ping " + server.url() + " -n 1", ca_variable + client_variables);
  EXPECT_EQ(run.exit_code, kOk) << run.out;

  // Without the client certificate the server refuses the handshake.
  const CliRun refused = run_cli("ping " + server.url() + " -n 1", ca_variable);
  EXPECT_EQ(refused.exit_code, kConfig) << refused.out;
  EXPECT_TRUE(contains(refused.out, "--cert")) << refused.out;
}

TEST_F(TlsServerCliTest, MutualTlsWithCertAndKeyFlags) {
  RedisServer server({.tls = server_tls(/*auth_clients=*/true)});
  const std::string base = "ping " + server.url() + " -n 1 --cacert " + ca();
  const CliRun run = run_cli(base + " --cert " + certs_.client_cert.string() + " --key " +
                             certs_.client_key.string());
  EXPECT_EQ(run.exit_code, kOk) << run.out;

  const CliRun untrusted_client =
      run_cli(base + " --cert " + certs_.untrusted_client_cert.string() + " --key " +
              certs_.untrusted_client_key.string());
  EXPECT_EQ(untrusted_client.exit_code, kConfig) << untrusted_client.out;
  EXPECT_TRUE(contains(untrusted_client.out, "does not trust the client certificate"))
      << untrusted_client.out;
}

TEST_F(TlsServerCliTest, CheckReadsATlsServer) {
  RedisServer safe({.config = {"appendonly yes", "appendfsync always"}, .tls = server_tls()});
  const CliRun table = run_cli("check " + safe.url() + " --latency-samples 3 --cacert " + ca());
  EXPECT_EQ(table.exit_code, kOk) << table.out;
  EXPECT_TRUE(contains(table.out, safe.url())) << table.out;
  EXPECT_TRUE(contains(table.out, "persistence")) << table.out;

  RedisServer unsafe({.tls = server_tls()});  // appendonly no
  const CliRun json = run_cli("check --json " + unsafe.url() + " --latency-samples 3",
                              "PRODSAFE_TLS_CACERT=" + ca());
  EXPECT_EQ(json.exit_code, kFailed) << json.out;
  const auto report = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << json.out;
  EXPECT_EQ(report["url"], unsafe.url()) << report;
  EXPECT_EQ(report["passed"], false) << report;
  EXPECT_FALSE(report["results"].empty()) << report;

  // A check that cannot connect says why, in the JSON.
  const CliRun wrong_ca =
      run_cli("check --json " + safe.url() + " --cacert " + certs_.other_ca_cert.string());
  EXPECT_EQ(wrong_ca.exit_code, kConfig) << wrong_ca.out;
  const auto failure = nlohmann::json::parse(wrong_ca.out, nullptr, false);
  ASSERT_FALSE(failure.is_discarded()) << wrong_ca.out;
  EXPECT_EQ(failure["error"]["kind"], "config") << failure;
}

// Without --redis, --tls makes the command's own servers TLS-only, and every
// connection it makes trusts their CA: the workers of a chaos run are given
// rediss:// URLs and that CA.
TEST(EmbeddedTlsCliTest, ChaosWithTlsRunsItsServersAndWorkersOnTls) {
  std::string pattern = (fs::temp_directory_path() / "prodsafe-chaos-tls-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const fs::path work_dir = pattern;
  const CliRun run =
      run_cli("chaos --tls --quick --scenario retry_race --work-dir " + work_dir.string());
  EXPECT_EQ(run.exit_code, kOk) << run.out;
  EXPECT_TRUE(contains(run.out, "Redis: embedded per scenario, TLS only")) << run.out;
  EXPECT_TRUE(contains(run.out, "every invariant held")) << run.out;

  const fs::path ca_file = work_dir / "retry_race" / "certificates" / "ca.pem";
  EXPECT_TRUE(fs::exists(ca_file)) << ca_file;
  std::size_t specs = 0;
  for (const auto& entry : fs::recursive_directory_iterator(work_dir)) {
    if (!entry.path().string().ends_with(".spec.json")) continue;
    ++specs;
    std::ifstream file(entry.path());
    const auto spec = nlohmann::json::parse(file, nullptr, false);
    ASSERT_FALSE(spec.is_discarded()) << entry.path();
    EXPECT_TRUE(spec["redis_url"].get<std::string>().starts_with("rediss://")) << spec;
    EXPECT_EQ(spec["tls"]["ca_file"], ca_file.string()) << spec;
  }
  EXPECT_GT(specs, 0u) << "no worker spec in " << work_dir;
  fs::remove_all(work_dir);
}

// The whole demo (its crash, pause and order steps included) over TLS; its
// certificates go away with it.
TEST(EmbeddedTlsCliTest, DemoWithTlsRunsItsServerOnTlsOnly) {
  const CliRun run = run_cli("demo --tls");
  EXPECT_EQ(run.exit_code, kOk) << run.out;
  EXPECT_TRUE(contains(run.out, "connected to rediss://127.0.0.1:")) << run.out;
  EXPECT_TRUE(contains(run.out, "Redis runtime checks for rediss://127.0.0.1:")) << run.out;
  EXPECT_TRUE(contains(run.out, "the exchange saw 250 of 250 orders exactly once")) << run.out;
  const std::string marker = "with a CA and server certificate made in ";
  const std::size_t at = run.out.find(marker);
  ASSERT_NE(at, std::string::npos) << run.out;
  const std::size_t start = at + marker.size();
  const fs::path certificates = run.out.substr(start, run.out.find('\n', start) - start);
  EXPECT_FALSE(fs::exists(certificates)) << certificates << " was left behind";
}

TEST(EmbeddedTlsCliTest, WithoutRedisOnlyTlsItselfIsAccepted) {
  for (const char* arguments : {"demo --tls --insecure", "chaos --tls --cacert /etc/hostname"}) {
    const CliRun run = run_cli(arguments);
    EXPECT_EQ(run.exit_code, 64) << arguments << "\n" << run.out;
    EXPECT_TRUE(contains(run.out, "keep only --tls")) << arguments << "\n" << run.out;
  }
}

}  // namespace
