// The client over TLS against a real redis-server with tls-port, with a CA,
// server and client certificates made by the harness (openssl CLI): the
// client works as over TCP, and each misconfiguration fails at connect, typed,
// saying what to change, within connect_timeout.
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <openssl/err.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/embedded/test_certificates.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/script.hpp"
#include "support/log_capture.hpp"

namespace prodsafe::redis {
namespace {

using namespace std::chrono_literals;
using std::chrono::steady_clock;
namespace fs = std::filesystem;
using embedded::RedisServer;
using embedded::RedisServerTls;
using embedded::TestCertificates;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (fs::temp_directory_path() / "prodsafe-tls-client-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
    certs_ = embedded::make_test_certificates(directory_);
  }
  static void TearDownTestSuite() { fs::remove_all(directory_); }

  static RedisServerTls server_tls(bool auth_clients = false, bool tls_only = true) {
    return {.cert_file = certs_.server_cert,
            .key_file = certs_.server_key,
            .ca_file = certs_.ca_cert,
            .auth_clients = auth_clients,
            .tls_only = tls_only};
  }
  static Options options(TlsOptions tls = trusted()) {
    return {.connect_timeout = 2s, .command_timeout = 2s, .pool_size = 2, .tls = std::move(tls)};
  }
  static TlsOptions trusted() { return {.ca_file = certs_.ca_cert.string()}; }
  static TlsOptions with_client_cert() {
    return {.ca_file = certs_.ca_cert.string(),
            .cert_file = certs_.client_cert.string(),
            .key_file = certs_.client_key.string()};
  }

  // The message of the error connecting with `tls` to `url` throws; fails
  // the test when it is not an `E` or it took longer than the connect_timeout.
  template <class E>
  static std::string connect_error(const std::string& url, TlsOptions tls) {
    const auto start = steady_clock::now();
    try {
      Client client(url, options(std::move(tls)));
      (void)client.ping();
      ADD_FAILURE() << "connected";
    } catch (const E& error) {
      EXPECT_LT(steady_clock::now() - start, 2500ms);
      return error.what();
    } catch (const std::exception& error) {
      ADD_FAILURE() << "unexpected error class: " << error.what();
    }
    return {};
  }

  static fs::path directory_;
  static TestCertificates certs_;
};

fs::path TlsTest::directory_;
TestCertificates TlsTest::certs_;

TEST_F(TlsTest, CommandsPipelinesScriptsAndPubSubWorkOverTls) {
  RedisServer server({.tls = server_tls()});
  ASSERT_EQ(server.url().rfind("rediss://", 0), 0U);
  Client client(server.url(), options());
  EXPECT_EQ(client.ping(), "PONG");
  const std::string big(3 << 20, 'b');  // many TLS records each way
  client.set("big", big);
  EXPECT_EQ(client.get("big"), big);
  Pipeline pipeline;
  for (int i = 0; i < 100; ++i) pipeline.add({"INCR", "n"});
  EXPECT_EQ(client.pipeline(pipeline).back().integer(), 100);
  const Script script("add", "return redis.call('INCRBY', KEYS[1], ARGV[1])");
  EXPECT_EQ(script.run(client, {"n"}, {"5"}).integer(), 105);

  Connection subscriber(parse_url(server.url()), options());
  const std::string_view channel = "events";
  subscriber.subscribe({&channel, 1});
  client.command({"PUBLISH", "events", "one"});
  client.command({"PUBLISH", "events", "two"});
  for (const char* expected : {"one", "two"}) {
    const std::optional<Reply> message = subscriber.next_message(2s);
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->array().at(2).str(), expected);
  }
  EXPECT_FALSE(subscriber.next_message(50ms).has_value());
}

TEST_F(TlsTest, TheUrlOrTheOptionTurnsTlsOn) {
  RedisServer server({.tls = server_tls()});
  TlsOptions tls = trusted();
  tls.enabled = true;
  Client client("redis://127.0.0.1:" + std::to_string(server.port()), options(tls));
  EXPECT_EQ(client.ping(), "PONG");
}

TEST_F(TlsTest, MutualTlsNeedsTheClientCertificate) {
  RedisServer server({.tls = server_tls(/*auth_clients=*/true)});
  Client client(server.url(), options(with_client_cert()));
  EXPECT_EQ(client.ping(), "PONG");
  const std::string message = connect_error<ConfigError>(server.url(), trusted());
  EXPECT_NE(message.find("client certificate"), std::string::npos) << message;
  EXPECT_NE(message.find("--cert"), std::string::npos) << message;
}

TEST_F(TlsTest, AClientCertificateFromAnotherCaIsRefused) {
  RedisServer server({.tls = server_tls(/*auth_clients=*/true)});
  TlsOptions tls = trusted();
  tls.cert_file = certs_.untrusted_client_cert.string();
  tls.key_file = certs_.untrusted_client_key.string();
  const std::string message = connect_error<ConfigError>(server.url(), tls);
  EXPECT_NE(message.find("does not trust the client certificate"), std::string::npos) << message;
}

TEST_F(TlsTest, AServerSignedByAnotherCaIsNotTrusted) {
  RedisServer server({.tls = server_tls()});
  const std::string message =
      connect_error<ConfigError>(server.url(), {.ca_file = certs_.other_ca_cert.string()});
  EXPECT_NE(message.find("not trusted"), std::string::npos) << message;
  EXPECT_NE(message.find("--cacert"), std::string::npos) << message;
}

TEST_F(TlsTest, TheCertificateMustNameTheHost) {
  RedisServerTls wrong_host = server_tls();
  wrong_host.cert_file = certs_.wrong_host_server_cert;
  wrong_host.key_file = certs_.wrong_host_server_key;
  RedisServer server({.tls = wrong_host});
  const std::string message = connect_error<ConfigError>(server.url(), trusted());
  EXPECT_NE(message.find("does not name '127.0.0.1'"), std::string::npos) << message;
  // The name the certificate does carry, sent as SNI and checked.
  TlsOptions sni = trusted();
  sni.sni = "wrong.example";
  EXPECT_EQ(Client(server.url(), options(sni)).ping(), "PONG");
}

TEST_F(TlsTest, ANameInTheUrlIsCheckedAgainstTheCertificate) {
  RedisServer server({.tls = server_tls()});
  Client client("rediss://localhost:" + std::to_string(server.port()), options());
  EXPECT_EQ(client.ping(), "PONG");
}

TEST_F(TlsTest, AnExpiredServerCertificateIsRefused) {
  RedisServerTls expired = server_tls();
  expired.cert_file = certs_.expired_server_cert;
  expired.key_file = certs_.expired_server_key;
  RedisServer server({.tls = expired});
  const std::string message = connect_error<ConfigError>(server.url(), trusted());
  EXPECT_NE(message.find("validity"), std::string::npos) << message;
}

TEST_F(TlsTest, APlainClientOnTheTlsPortFailsAndSaysSo) {
  RedisServer server({.tls = server_tls()});
  const std::string plain = "redis://127.0.0.1:" + std::to_string(server.port());
  const auto start = steady_clock::now();
  try {
    Client client(plain, options({}));
    (void)client.ping();
    FAIL() << "a plain client got an answer from the TLS port";
  } catch (const Error& error) {
    EXPECT_LT(steady_clock::now() - start, 2500ms);
    EXPECT_NE(std::string(error.what()).find("rediss://"), std::string::npos) << error.what();
  }
}

// A plain port reads the ClientHello as the start of an inline command and
// waits, silently, for its end: the handshake ends at the connect timeout,
// and the message names the plain port as a cause.
TEST_F(TlsTest, ATlsClientOnAPlainPortEndsAtTheConnectTimeoutAndSaysWhy) {
  RedisServer server;
  Options tls = options();
  tls.connect_timeout = 300ms;
  const auto start = steady_clock::now();
  try {
    Client client("rediss://127.0.0.1:" + std::to_string(server.port()), tls);
    (void)client.ping();
    FAIL() << "a plain port completed a TLS handshake";
  } catch (const Timeout& error) {
    EXPECT_NE(std::string(error.what()).find("plain (non-TLS) port"), std::string::npos)
        << error.what();
  }
  EXPECT_LT(steady_clock::now() - start, 700ms);
}

TEST_F(TlsTest, AHandshakeWithAPausedServerEndsAtTheConnectTimeout) {
  RedisServer server({.tls = server_tls()});
  server.pause();
  const auto start = steady_clock::now();
  Options paused = options();
  paused.connect_timeout = 300ms;
  try {
    Client client(server.url(), paused);
    (void)client.ping();
    FAIL() << "a paused server answered";
  } catch (const Timeout& error) {
    EXPECT_NE(std::string(error.what()).find("connect_timeout"), std::string::npos) << error.what();
  }
  EXPECT_LT(steady_clock::now() - start, 700ms);
  server.resume();
}

TEST_F(TlsTest, VerificationOffConnectsToAnyServerAndWarnsOnce) {
  RedisServer server({.tls = server_tls()});
  prodsafe::testing::LogCapture log;
  TlsOptions insecure{.ca_file = certs_.other_ca_cert.string(), .verify_peer = false};
  EXPECT_EQ(Client(server.url(), options(insecure)).ping(), "PONG");
  EXPECT_EQ(Client(server.url(), options(insecure)).ping(), "PONG");
  const std::string text = log.text();
  const auto first = text.find("verification is off");
  ASSERT_NE(first, std::string::npos) << text;
  EXPECT_EQ(text.find("verification is off", first + 1), std::string::npos) << "warned twice";
}

TEST_F(TlsTest, UnusableFilesAreConfigErrorsNamingThem) {
  RedisServer server({.tls = server_tls()});
  const std::string missing = (directory_ / "missing.pem").string();
  std::string message = connect_error<ConfigError>(server.url(), {.ca_file = missing});
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  TlsOptions mismatched = with_client_cert();
  mismatched.key_file = certs_.server_key.string();
  message = connect_error<ConfigError>(server.url(), mismatched);
  EXPECT_NE(message.find("does not belong"), std::string::npos) << message;
}

// A peer that accepts and then closes without a word (a load balancer with
// no backend): the handshake says the server closed the connection.
TEST_F(TlsTest, APeerThatClosesDuringTheHandshakeIsReportedAsClosed) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  std::thread closer([listener] {
    const int peer = ::accept(listener, nullptr, nullptr);
    std::this_thread::sleep_for(200ms);
    ::close(peer);
  });
  try {
    Connection connection(
        parse_url("rediss://127.0.0.1:" + std::to_string(ntohs(address.sin_port))), options());
    ADD_FAILURE() << "connected";
  } catch (const StoreUnavailable& error) {
    EXPECT_NE(std::string(error.what()).find("closed the connection"), std::string::npos)
        << error.what();
  }
  closer.join();
  ::close(listener);
}

// A failed connect leaves nothing in this thread's OpenSSL error queue, where
// other OpenSSL code on the thread would take it for its own failure.
TEST_F(TlsTest, AFailedConnectLeavesTheThreadsOpenSslErrorQueueEmpty) {
  RedisServer server({.tls = server_tls()});
  (void)connect_error<ConfigError>(server.url(), {.ca_file = certs_.other_ca_cert.string()});
  EXPECT_EQ(ERR_peek_error(), 0UL);
  TlsOptions mismatched = with_client_cert();
  mismatched.key_file = certs_.server_key.string();
  (void)connect_error<ConfigError>(server.url(), mismatched);
  EXPECT_EQ(ERR_peek_error(), 0UL);
}

// Each new connection reads the files afresh: replacing the CA file (as a
// rotation does) changes what the next connection trusts, in the same Client.
TEST_F(TlsTest, ANewConnectionReadsReplacedCertificateFiles) {
  RedisServer server({.tls = server_tls()});
  const fs::path ca = directory_ / "rotating-ca.pem";
  fs::copy_file(certs_.other_ca_cert, ca, fs::copy_options::overwrite_existing);
  Options rotating = options({.ca_file = ca.string()});
  rotating.reconnect_backoff_initial = 0ms;
  Client client(server.url(), rotating);
  EXPECT_THROW((void)client.ping(), ConfigError);
  fs::copy_file(certs_.ca_cert, ca, fs::copy_options::overwrite_existing);
  EXPECT_EQ(client.ping(), "PONG");
}

// The child of a fork destroys the connections it inherited without a TLS
// close_notify: the parent's pooled connection keeps working, unreplaced.
TEST_F(TlsTest, AForkedChildLeavesTheParentsTlsConnectionsAlone) {
  RedisServer server({.tls = server_tls()});
  auto client = std::make_unique<Client>(server.url(), options());
  const long long id = client->command({"CLIENT", "ID"}).integer();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 0;
    try {
      if (client->ping() != "PONG") code = 1;
      client.reset();
    } catch (...) {
      code = 2;
    }
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(client->command({"CLIENT", "ID"}).integer(), id) << "the parent's connection was lost";
  EXPECT_EQ(client->pool().stats().created, 1U);
}

}  // namespace
}  // namespace prodsafe::redis
