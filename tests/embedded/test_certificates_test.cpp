// The test certificate generator: what `openssl verify` says of each file, key
// permissions, and failures.
#include "prodsafe/embedded/test_certificates.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "command.hpp"
#include "prodsafe/core/error.hpp"

namespace prodsafe::embedded {
namespace {

using namespace std::chrono_literals;
using testing::run_command;
namespace fs = std::filesystem;

class TestCertificatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "prodsafe-certs-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
  }
  void TearDown() override { fs::remove_all(directory_); }

  // `openssl verify` of `cert` against `ca` with extra options; its output.
  static testing::CommandResult verify(const fs::path& ca, const fs::path& cert,
                                       std::vector<std::string> options = {}) {
    std::vector<std::string> argv = {"openssl", "verify", "-CAfile", ca.string()};
    argv.insert(argv.end(), options.begin(), options.end());
    argv.push_back(cert.string());
    return run_command(argv);
  }

  fs::path directory_;
};

TEST_F(TestCertificatesTest, ValidCertificatesVerifyForTheirPurposeAndHost) {
  const TestCertificates c = make_test_certificates(directory_ / "certs");
  EXPECT_EQ(c.ca_cert, directory_ / "certs" / "ca.pem");
  for (const fs::path& cert : {c.server_cert, c.client_cert, c.wrong_host_server_cert}) {
    const auto result = verify(c.ca_cert, cert);
    EXPECT_EQ(result.status, 0) << cert << ": " << result.output;
  }
  const auto localhost =
      verify(c.ca_cert, c.server_cert, {"-purpose", "sslserver", "-verify_hostname", "localhost"});
  EXPECT_EQ(localhost.status, 0) << localhost.output;
  const auto ip =
      verify(c.ca_cert, c.server_cert, {"-purpose", "sslserver", "-verify_ip", "127.0.0.1"});
  EXPECT_EQ(ip.status, 0) << ip.output;
  const auto client = verify(c.ca_cert, c.client_cert, {"-purpose", "sslclient"});
  EXPECT_EQ(client.status, 0) << client.output;
  const auto other = verify(c.other_ca_cert, c.untrusted_client_cert, {"-purpose", "sslclient"});
  EXPECT_EQ(other.status, 0) << other.output;

  const auto details = run_command({"openssl", "x509", "-noout", "-text", "-in", c.server_cert});
  EXPECT_NE(details.output.find("prime256v1"), std::string::npos) << details.output;
  EXPECT_NE(details.output.find("ecdsa-with-SHA256"), std::string::npos) << details.output;
}

TEST_F(TestCertificatesTest, TheExpiredCertificateIsRejectedAsExpired) {
  const TestCertificates c = make_test_certificates(directory_);
  const auto result = verify(c.ca_cert, c.expired_server_cert);
  EXPECT_NE(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("certificate has expired"), std::string::npos) << result.output;
}

TEST_F(TestCertificatesTest, TheWrongHostCertificateNamesOnlyTheOtherHost) {
  const TestCertificates c = make_test_certificates(directory_);
  const auto other =
      verify(c.ca_cert, c.wrong_host_server_cert, {"-verify_hostname", "wrong.example"});
  EXPECT_EQ(other.status, 0) << other.output;
  const auto localhost =
      verify(c.ca_cert, c.wrong_host_server_cert, {"-verify_hostname", "localhost"});
  EXPECT_NE(localhost.status, 0) << localhost.output;
  EXPECT_NE(localhost.output.find("hostname mismatch"), std::string::npos) << localhost.output;
  const auto ip = verify(c.ca_cert, c.wrong_host_server_cert, {"-verify_ip", "127.0.0.1"});
  EXPECT_NE(ip.status, 0) << ip.output;
  const auto server = verify(c.ca_cert, c.server_cert, {"-verify_hostname", "wrong.example"});
  EXPECT_NE(server.status, 0) << "server.pem should not be valid for wrong.example";
}

TEST_F(TestCertificatesTest, TheOtherCaIsUnrelated) {
  const TestCertificates c = make_test_certificates(directory_);
  const auto server = verify(c.other_ca_cert, c.server_cert);
  EXPECT_NE(server.status, 0) << server.output;
  EXPECT_NE(server.output.find("unable to get local issuer certificate"), std::string::npos)
      << server.output;
  EXPECT_NE(verify(c.ca_cert, c.untrusted_client_cert).status, 0);
}

TEST_F(TestCertificatesTest, KeysAreOwnerOnlyAndMatchTheirCertificates) {
  const TestCertificates c = make_test_certificates(directory_);
  const std::pair<fs::path, fs::path> pairs[] = {
      {c.ca_cert, c.ca_key},
      {c.server_cert, c.server_key},
      {c.client_cert, c.client_key},
      {c.expired_server_cert, c.expired_server_key},
      {c.wrong_host_server_cert, c.wrong_host_server_key},
      {c.other_ca_cert, c.other_ca_key},
      {c.untrusted_client_cert, c.untrusted_client_key}};
  for (const auto& [cert, key] : pairs) {
    EXPECT_EQ(fs::status(key).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write)
        << key;
    const auto from_cert = run_command({"openssl", "x509", "-noout", "-pubkey", "-in", cert});
    const auto from_key = run_command({"openssl", "pkey", "-pubout", "-in", key});
    EXPECT_EQ(from_cert.status, 0) << from_cert.output;
    EXPECT_EQ(from_cert.output, from_key.output) << cert << " does not match " << key;
  }
  // Only the files documented are left in the directory.
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(directory_)) {
    ++files;
    EXPECT_TRUE(entry.is_regular_file()) << entry.path();
  }
  EXPECT_EQ(files, 14u);
}

TEST_F(TestCertificatesTest, CallingAgainReplacesTheFiles) {
  const TestCertificates first = make_test_certificates(directory_);
  const auto before =
      run_command({"openssl", "x509", "-noout", "-fingerprint", "-in", first.ca_cert});
  const TestCertificates second = make_test_certificates(directory_);
  const auto after =
      run_command({"openssl", "x509", "-noout", "-fingerprint", "-in", second.ca_cert});
  EXPECT_NE(before.output, after.output);
  EXPECT_EQ(verify(second.ca_cert, second.server_cert).status, 0);
}

TEST_F(TestCertificatesTest, AMissingOpensslIsAConfigErrorSayingWhatToInstall) {
  for (const std::string openssl : {"openssl-that-does-not-exist", "/nonexistent/openssl"}) {
    try {
      (void)make_test_certificates(directory_, openssl);
      ADD_FAILURE() << "made certificates with " << openssl;
    } catch (const ConfigError& error) {
      const std::string text = error.what();
      EXPECT_NE(text.find(openssl), std::string::npos) << text;
      EXPECT_NE(text.find("install the Debian package openssl"), std::string::npos) << text;
    }
  }
}

// A stand-in for openssl: a shell script with the given body.
fs::path fake_openssl(const fs::path& directory, const std::string& body) {
  const fs::path script = directory / "fake-openssl";
  std::ofstream(script) << "#!/bin/sh\n" << body << "\n";
  fs::permissions(script, fs::perms::owner_all);
  return script;
}

TEST_F(TestCertificatesTest, AFailingOpensslIsAnIoErrorWithItsOutput) {
  const fs::path fake = fake_openssl(directory_, "echo \"$1: out of entropy\" >&2; exit 3");
  try {
    (void)make_test_certificates(directory_ / "certs", fake.string());
    ADD_FAILURE() << "made certificates with a failing openssl";
  } catch (const IoError& error) {
    const std::string text = error.what();
    EXPECT_NE(text.find("genpkey: out of entropy"), std::string::npos) << text;
    EXPECT_NE(text.find("status 3"), std::string::npos) << text;
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(directory_ / "certs"), fs::directory_iterator()),
            0)
      << "the work directory should be removed";
}

TEST_F(TestCertificatesTest, AHangingOpensslIsKilledAfterTheTimeout) {
  const fs::path fake = fake_openssl(directory_, "exec sleep 30");
  const auto start = std::chrono::steady_clock::now();
  try {
    (void)make_test_certificates(directory_, fake.string(), 200ms);
    ADD_FAILURE() << "made certificates with a hanging openssl";
  } catch (const IoError& error) {
    EXPECT_NE(std::string(error.what()).find("did not finish within 200 ms"), std::string::npos)
        << error.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(TestCertificatesTest, ADirectoryThatCannotBeMadeIsAnIoError) {
  std::ofstream(directory_ / "file") << "x";
  try {
    (void)make_test_certificates(directory_ / "file" / "certs");
    ADD_FAILURE() << "made certificates under a file";
  } catch (const IoError& error) {
    EXPECT_NE(std::string(error.what()).find("file/certs"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace prodsafe::embedded
