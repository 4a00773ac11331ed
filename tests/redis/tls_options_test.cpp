// redis::TlsOptions are checked before any connection: a missing pair, a
// bad server name and files that cannot be used are refused with the field
// named. No server and no OpenSSL are needed.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/options.hpp"

namespace prodsafe::redis {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// What validate_tls_options(tls) throws, prefixed by the class it was thrown as.
std::string refusal(const TlsOptions& tls) {
  try {
    validate_tls_options(tls);
  } catch (const InvalidArgument& error) {
    return std::string("InvalidArgument: ") + error.what();
  } catch (const ConfigError& error) {
    return std::string("ConfigError: ") + error.what();
  } catch (const std::exception& error) {
    return std::string("other: ") + error.what();
  }
  return "accepted";
}

std::string endpoint_refusal(const std::string& url, const TlsOptions& tls) {
  try {
    validate_tls_endpoint(parse_url(url), tls);
  } catch (const InvalidArgument& error) {
    return std::string("InvalidArgument: ") + error.what();
  } catch (const std::exception& error) {
    return std::string("other: ") + error.what();
  }
  return "accepted";
}

// A directory with a readable PEM-named file in it, removed at the end.
class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/prodsafe-tls-options-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    directory_ = pattern;
    file_ = (directory_ / "ca.pem").string();
    std::ofstream(file_) << "not parsed by the checks\n";
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::filesystem::path directory_;
  std::string file_;
};

TEST(TlsOptionsTest, DefaultsAreAccepted) { EXPECT_EQ(refusal(TlsOptions{}), "accepted"); }

TEST(TlsOptionsTest, ACertificateWithoutItsKeyOrTheReverseNamesBothFields) {
  for (const TlsOptions& tls :
       {TlsOptions{.cert_file = "/etc/hostname"}, TlsOptions{.key_file = "/etc/hostname"}}) {
    EXPECT_THAT(refusal(tls),
                AllOf(StartsWith("InvalidArgument: "), HasSubstr("redis::Options::tls.cert_file"),
                      HasSubstr("redis::Options::tls.key_file"), HasSubstr("set both")));
  }
  EXPECT_THAT(refusal({.cert_file = "/etc/hostname"}), HasSubstr("tls.cert_file is set but"));
  EXPECT_THAT(refusal({.key_file = "/etc/hostname"}), HasSubstr("tls.key_file is set but"));
}

TEST(TlsOptionsTest, ServerNamesMustBeHostNames) {
  for (const char* good : {"redis.example.com", "localhost", "a", "redis-1.internal.", "10.0.0.5",
                           "xn--bcher-kva.example"}) {
    EXPECT_EQ(refusal({.sni = good}), "accepted") << good;
  }
  struct Bad {
    std::string sni;
    const char* says;
  };
  for (const Bad& bad :
       {Bad{"redis example.com", "contains the byte 0x20"},
        Bad{"redis_1.example.com", "contains '_'"}, Bad{"host:6380", "contains ':'"},
        Bad{"[::1]", "contains '['"}, Bad{"a..b", "empty label"},
        Bad{".example.com", "empty label"}, Bad{"-redis.example.com", "starts or ends with '-'"},
        Bad{"redis-.example.com", "starts or ends with '-'"},
        Bad{std::string(64, 'a') + ".com", "a label has at most 63"},
        Bad{std::string(254, 'a'), "a host name has at most 253"},
        Bad{std::string("evil\0name", 9), "contains the byte 0x00"}}) {
    EXPECT_THAT(refusal({.sni = bad.sni}),
                AllOf(StartsWith("InvalidArgument: redis::Options::tls.sni"), HasSubstr(bad.says),
                      HasSubstr("must be a host name")))
        << bad.sni;
  }
}

TEST_F(TlsFilesTest, ReadableFilesAndDirectoriesAreAccepted) {
  EXPECT_EQ(refusal({.ca_file = file_,
                     .ca_dir = directory_.string(),
                     .cert_file = file_,
                     .key_file = file_,
                     .sni = "redis.example.com"}),
            "accepted");
}

TEST_F(TlsFilesTest, AMissingFileIsAConfigErrorNamingTheFileAndTheField) {
  const std::string missing = (directory_ / "missing.pem").string();
  struct Case {
    TlsOptions tls;
    const char* field;
  };
  for (const Case& c :
       {Case{{.ca_file = missing}, "redis::Options::tls.ca_file"},
        Case{{.ca_dir = missing}, "redis::Options::tls.ca_dir"},
        Case{{.cert_file = missing, .key_file = file_}, "redis::Options::tls.cert_file"},
        Case{{.cert_file = file_, .key_file = missing}, "redis::Options::tls.key_file"}}) {
    EXPECT_THAT(refusal(c.tls), AllOf(StartsWith("ConfigError: "), HasSubstr(c.field),
                                      HasSubstr("'" + missing + "' does not exist")))
        << c.field;
  }
}

TEST_F(TlsFilesTest, AFileWhereADirectoryBelongsAndTheReverseAreRefused) {
  EXPECT_THAT(
      refusal({.ca_file = directory_.string()}),
      AllOf(StartsWith("ConfigError: redis::Options::tls.ca_file"), HasSubstr("is a directory")));
  EXPECT_THAT(refusal({.ca_dir = file_}),
              AllOf(StartsWith("ConfigError: redis::Options::tls.ca_dir"),
                    HasSubstr("is not a directory"), HasSubstr("openssl rehash")));
}

// What validate_tls_options(tls) throws when run as a process that cannot
// read the files: as this one, or (as root, who reads any file) in a child
// that has dropped to the user "nobody" (uid and gid 65534).
std::string refusal_without_privileges(const TlsOptions& tls) {
  if (::geteuid() != 0) return refusal(tls);
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(fds[0]);
    const std::string what = ::setgid(65534) == 0 && ::setuid(65534) == 0
                                 ? refusal(tls)
                                 : std::string("could not drop privileges");
    (void)!::write(fds[1], what.data(), what.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string what;
  char buffer[512];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) what.append(buffer, n);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  return what;
}

TEST_F(TlsFilesTest, AnUnreadableFileOrDirectoryIsAConfigError) {
  ASSERT_EQ(::chmod(directory_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(file_.c_str(), 0600), 0);
  const std::filesystem::path closed_directory = directory_ / "closed";
  std::filesystem::create_directory(closed_directory);
  ASSERT_EQ(::chmod(closed_directory.c_str(), 0700), 0);
  if (::geteuid() != 0) {
    ASSERT_EQ(::chmod(file_.c_str(), 0), 0);
  }
  EXPECT_THAT(refusal_without_privileges({.ca_file = file_}),
              AllOf(StartsWith("ConfigError: redis::Options::tls.ca_file"),
                    HasSubstr("'" + file_ + "' cannot be read"), HasSubstr("Permission denied")));
  if (::geteuid() != 0) {
    ASSERT_EQ(::chmod(closed_directory.c_str(), 0), 0);
  }
  EXPECT_THAT(refusal_without_privileges({.ca_dir = closed_directory.string()}),
              AllOf(StartsWith("ConfigError: redis::Options::tls.ca_dir"),
                    HasSubstr("cannot be read"), HasSubstr("Permission denied")));
}

TEST(TlsEndpointTest, AUnixSocketHasNoTls) {
  EXPECT_THAT(endpoint_refusal("unix:///run/redis.sock", {.enabled = true}),
              AllOf(StartsWith("InvalidArgument: "), HasSubstr("redis::Options::tls.enabled"),
                    HasSubstr("unix:///run/redis.sock is a unix socket"),
                    HasSubstr("TLS is only for TCP")));
  EXPECT_EQ(endpoint_refusal("unix:///run/redis.sock", {}), "accepted");
}

TEST(TlsEndpointTest, TlsSettingsWithoutTlsAreRefusedRatherThanIgnored) {
  for (const TlsOptions& tls : {TlsOptions{.ca_file = "/ca.pem"}, TlsOptions{.ca_dir = "/ca"},
                                TlsOptions{.cert_file = "/c.pem", .key_file = "/k.pem"},
                                TlsOptions{.sni = "redis.example.com"}}) {
    EXPECT_THAT(endpoint_refusal("redis://:pw@h:6379", tls),
                AllOf(StartsWith("InvalidArgument: redis::Options::tls."),
                      HasSubstr("TLS is off for redis://:***@h:6379"), HasSubstr("rediss://")));
    EXPECT_EQ(endpoint_refusal("rediss://h:6379", tls), "accepted");
    TlsOptions enabled = tls;
    enabled.enabled = true;
    EXPECT_EQ(endpoint_refusal("redis://h:6379", enabled), "accepted");
  }
  // Turning verification off without TLS changes nothing, so it is allowed.
  EXPECT_EQ(endpoint_refusal("redis://h:6379", {.verify_peer = false}), "accepted");
}

}  // namespace
}  // namespace prodsafe::redis
