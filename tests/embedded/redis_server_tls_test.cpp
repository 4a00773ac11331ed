// The private redis-server over TLS, checked with Debian's redis-cli (built
// with TLS) as the client: handshakes, client certificates, plain clients on
// the TLS port, and kill/pause/restart.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "command.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/embedded/test_certificates.hpp"
#include "prodsafe/redis/client.hpp"

namespace prodsafe::embedded {
namespace {

using testing::run_command;
namespace fs = std::filesystem;

class RedisServerTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (fs::temp_directory_path() / "prodsafe-tls-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
    certs_ = make_test_certificates(directory_);
  }
  static void TearDownTestSuite() { fs::remove_all(directory_); }

  static RedisServerTls tls(bool auth_clients = false, bool tls_only = true) {
    return {.cert_file = certs_.server_cert,
            .key_file = certs_.server_key,
            .ca_file = certs_.ca_cert,
            .auth_clients = auth_clients,
            .tls_only = tls_only};
  }

  // redis-cli over TLS to 127.0.0.1:`port`, trusting `ca`, with `extra`
  // options (a client certificate) and then the command.
  static testing::CommandResult tls_cli(int port, std::vector<std::string> command,
                                        std::vector<std::string> extra = {},
                                        const fs::path& ca = certs_.ca_cert) {
    std::vector<std::string> argv = {"redis-cli", "--tls",     "--cacert", ca.string(),
                                     "-h",        "127.0.0.1", "-p",       std::to_string(port)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.insert(argv.end(), command.begin(), command.end());
    return run_command(argv);
  }
  static testing::CommandResult plain_cli(int port, std::vector<std::string> command) {
    std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port)};
    argv.insert(argv.end(), command.begin(), command.end());
    return run_command(argv);
  }
  static std::vector<std::string> client_cert(const TestCertificates& c = certs_) {
    return {"--cert", c.client_cert.string(), "--key", c.client_key.string()};
  }

  static fs::path directory_;
  static TestCertificates certs_;
};

fs::path RedisServerTlsTest::directory_;
TestCertificates RedisServerTlsTest::certs_;

std::string read_file(const fs::path& file) {
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(RedisServerTlsTest, ATlsOnlyServerAnswersTlsClientsOnly) {
  RedisServer server({.tls = tls()});
  EXPECT_EQ(server.url(), "rediss://127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(server.tls_url(), server.url());
  EXPECT_EQ(server.tls_port(), server.port());
  const std::string conf = read_file(server.directory() / "redis.conf");
  EXPECT_NE(conf.find("port 0\n"), std::string::npos) << conf;
  EXPECT_NE(conf.find("tls-auth-clients no\n"), std::string::npos) << conf;

  const auto ping = tls_cli(server.port(), {"PING"});
  EXPECT_EQ(ping.output, "PONG\n");
  const auto plain = plain_cli(server.port(), {"PING"});
  EXPECT_EQ(plain.output.find("PONG"), std::string::npos) << plain.output;
  EXPECT_NE(plain.status, 0) << plain.output;
}

TEST_F(RedisServerTlsTest, AClientTrustingAnotherCaRefusesTheServer) {
  RedisServer server({.tls = tls()});
  const auto result = tls_cli(server.port(), {"PING"}, {}, certs_.other_ca_cert);
  EXPECT_EQ(result.output.find("PONG"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("certificate verify failed"), std::string::npos) << result.output;
}

TEST_F(RedisServerTlsTest, AnExpiredServerCertificateIsRefusedByTheClient) {
  RedisServerTls expired = tls();
  expired.cert_file = certs_.expired_server_cert;
  expired.key_file = certs_.expired_server_key;
  RedisServer server({.tls = expired});
  const auto result = tls_cli(server.port(), {"PING"});
  EXPECT_EQ(result.output.find("PONG"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("certificate verify failed"), std::string::npos) << result.output;
}

TEST_F(RedisServerTlsTest, AuthClientsDemandsACertificateFromTheCa) {
  RedisServer server({.tls = tls(/*auth_clients=*/true)});
  EXPECT_NE(read_file(server.directory() / "redis.conf").find("tls-auth-clients yes\n"),
            std::string::npos);
  const auto without = tls_cli(server.port(), {"PING"});
  EXPECT_EQ(without.output.find("PONG"), std::string::npos) << without.output;
  const auto untrusted = tls_cli(server.port(), {"PING"},
                                 {"--cert", certs_.untrusted_client_cert.string(), "--key",
                                  certs_.untrusted_client_key.string()});
  EXPECT_EQ(untrusted.output.find("PONG"), std::string::npos) << untrusted.output;
  const auto with = tls_cli(server.port(), {"PING"}, client_cert());
  EXPECT_EQ(with.output, "PONG\n");
}

TEST_F(RedisServerTlsTest, TlsBesidePlainListensOnBothPorts) {
  RedisServer server({.tls = tls(/*auth_clients=*/false, /*tls_only=*/false)});
  EXPECT_NE(server.port(), server.tls_port());
  EXPECT_EQ(server.url(), "redis://127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(server.tls_url(), "rediss://127.0.0.1:" + std::to_string(server.tls_port()));
  redis::Client client(server.url());
  client.set("k", "v");
  EXPECT_EQ(tls_cli(server.tls_port(), {"GET", "k"}).output, "v\n");
  EXPECT_EQ(plain_cli(server.tls_port(), {"PING"}).output.find("PONG"), std::string::npos);
}

TEST_F(RedisServerTlsTest, KillAndRestartKeepTheTlsPortAndFsyncedData) {
  RedisServer server(
      {.config = {"appendonly yes", "appendfsync always"}, .tls = tls(/*auth_clients=*/true)});
  const int port = server.port();
  ASSERT_EQ(tls_cli(port, {"SET", "k", "v"}, client_cert()).output, "OK\n");
  server.kill();
  EXPECT_NE(tls_cli(port, {"PING"}, client_cert()).status, 0);
  server.restart();
  EXPECT_EQ(server.port(), port);
  EXPECT_EQ(server.url(), "rediss://127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(tls_cli(port, {"GET", "k"}, client_cert()).output, "v\n");
  server.stop();
  server.restart();
  EXPECT_EQ(tls_cli(port, {"GET", "k"}, client_cert()).output, "v\n");
}

TEST_F(RedisServerTlsTest, PauseResumeAndKillWhilePaused) {
  RedisServer server({.tls = tls()});
  server.pause();
  server.resume();
  EXPECT_EQ(tls_cli(server.port(), {"PING"}).output, "PONG\n");
  server.pause();
  server.kill();
  server.restart();
  EXPECT_EQ(tls_cli(server.port(), {"PING"}).output, "PONG\n");
}

TEST_F(RedisServerTlsTest, RestartReadsReplacedCertificates) {
  const fs::path rotating = directory_ / "rotating";
  fs::create_directories(rotating);
  const fs::path cert = rotating / "server.pem";
  const fs::path key = rotating / "server.key";
  fs::copy_file(certs_.expired_server_cert, cert, fs::copy_options::overwrite_existing);
  fs::copy_file(certs_.expired_server_key, key, fs::copy_options::overwrite_existing);
  RedisServerTls rotated = tls();
  rotated.cert_file = cert;
  rotated.key_file = key;
  RedisServer server({.tls = rotated});
  EXPECT_EQ(tls_cli(server.port(), {"PING"}).output.find("PONG"), std::string::npos);
  fs::copy_file(certs_.server_cert, cert, fs::copy_options::overwrite_existing);
  fs::copy_file(certs_.server_key, key, fs::copy_options::overwrite_existing);
  server.restart();
  EXPECT_EQ(tls_cli(server.port(), {"PING"}).output, "PONG\n");
}

TEST_F(RedisServerTlsTest, MissingTlsFilesAreConfigErrors) {
  RedisServerTls missing = tls();
  missing.cert_file = directory_ / "no-such.pem";
  try {
    RedisServer server({.tls = missing});
    ADD_FAILURE() << "started without a certificate";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("no-such.pem"), std::string::npos) << error.what();
  }
  RedisServerTls no_ca = tls(/*auth_clients=*/true);
  no_ca.ca_file.clear();
  try {
    RedisServer server({.tls = no_ca});
    ADD_FAILURE() << "started auth_clients without a CA";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("ca_file"), std::string::npos) << error.what();
  }
}

TEST_F(RedisServerTlsTest, AKeyThatDoesNotMatchFailsWithTheServersComplaint) {
  RedisServerTls mismatched = tls();
  mismatched.key_file = certs_.client_key;
  try {
    RedisServer server({.tls = mismatched});
    ADD_FAILURE() << "started with a key that does not match the certificate";
  } catch (const StoreUnavailable& error) {
    EXPECT_NE(std::string(error.what()).find("exited during startup"), std::string::npos)
        << error.what();
  }
}

TEST_F(RedisServerTlsTest, WithoutTlsThereIsNoTlsUrl) {
  RedisServer server;
  EXPECT_EQ(server.tls_port(), 0);
  EXPECT_THROW((void)server.tls_url(), InvalidArgument);
}

}  // namespace
}  // namespace prodsafe::embedded
