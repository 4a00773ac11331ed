// https:// webhooks through the OpenSSL-enabled cpp-httplib: a local HTTPS
// server with a certificate made for the test, trusted through
// WebhookOptions::ca_cert_path, and refused when not trusted.
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "prodsafe/alerts/webhook.hpp"
#include "prodsafe/core/clock.hpp"
#include "resolve.hpp"
#include "test_http_server.hpp"

namespace prodsafe::alerts {
namespace {

using namespace std::chrono_literals;
using testing::TestHttpServer;

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* pointer) const { Free(pointer); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

// A self-signed CA certificate for 127.0.0.1 (IP SAN) and its P-256 key, as
// PEM files in a temporary directory removed at the end.
class SelfSignedCert {
 public:
  SelfSignedCert() {
    std::string pattern = (std::filesystem::temp_directory_path() / "prodsafe-tls-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    KeyPtr key(EVP_EC_gen("P-256"));
    CertPtr cert(X509_new());
    if (!key || !cert) throw std::runtime_error("OpenSSL: cannot make a key or certificate");
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
    for (const auto& [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
                                     std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
      ExtPtr extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value));
      if (!extension || X509_add_ext(cert.get(), extension.get(), -1) != 1) {
        throw std::runtime_error("OpenSSL: cannot add an extension");
      }
    }
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
      throw std::runtime_error("OpenSSL: cannot sign");
    }
    write(cert_path(), [&](FILE* file) { return PEM_write_X509(file, cert.get()); });
    write(key_path(), [&](FILE* file) {
      return PEM_write_PrivateKey(file, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    });
  }
  ~SelfSignedCert() { std::filesystem::remove_all(dir_); }

  [[nodiscard]] std::string cert_path() const { return (dir_ / "cert.pem").string(); }
  [[nodiscard]] std::string key_path() const { return (dir_ / "key.pem").string(); }

 private:
  template <class Writer>
  static void write(const std::string& path, Writer writer) {
    FILE* file = std::fopen(path.c_str(), "w");
    if (file == nullptr) throw std::runtime_error("cannot write " + path);
    const int written = writer(file);
    std::fclose(file);
    if (written != 1) throw std::runtime_error("OpenSSL: cannot write " + path);
  }

  std::filesystem::path dir_;
};

class WebhookTlsTest : public ::testing::Test {
 protected:
  SelfSignedCert cert;
  TestHttpServer server{cert.cert_path(), cert.key_path()};
  ManualClock clock;
};

TEST_F(WebhookTlsTest, HttpsIsDeliveredToATrustedServer) {
  auto dispatcher = std::make_shared<WebhookDispatcher>(
      WebhookOptions{.ca_cert_path = cert.cert_path(), .clock = &clock});
  JsonWebhook sink(server.url("/secure/hook"), dispatcher);
  ASSERT_EQ(server.url("").substr(0, 8), "https://");

  EXPECT_TRUE(sink.send(kCircuitOpened, "opened", AlertContext{.job_type = "orders"}));
  ASSERT_TRUE(dispatcher->flush(5s));
  EXPECT_EQ(dispatcher->delivered(), 1u);
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].path, "/secure/hook");
  EXPECT_NE(server.requests()[0].body.find("\"job_type\":\"orders\""), std::string::npos);
}

TEST_F(WebhookTlsTest, AnUntrustedCertificateIsRefusedWithoutRetrying) {
  auto dispatcher = std::make_shared<WebhookDispatcher>(WebhookOptions{.clock = &clock});
  JsonWebhook sink(server.url("/secure/hook"), dispatcher);

  EXPECT_TRUE(sink.send(kCircuitOpened, "opened", AlertContext{.job_type = "orders"}));
  ASSERT_TRUE(dispatcher->flush(5s));
  EXPECT_EQ(dispatcher->delivered(), 0u);
  EXPECT_EQ(dispatcher->failed(), 1u);
  EXPECT_EQ(dispatcher->retried(), 0u) << "a certificate that fails verification stays failing";
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(WebhookTlsTest, TheCertificateIsCheckedAgainstTheHostNameNotTheAddressConnectedTo) {
  // The name resolves to 127.0.0.1, which the certificate covers; the name
  // itself it does not. The dispatcher connects to the address it looked up,
  // but must verify the name the URL gave.
  detail::set_resolver_for_testing(
      [](const std::string&) { return std::vector<std::string>{"127.0.0.1"}; });
  auto dispatcher = std::make_shared<WebhookDispatcher>(
      WebhookOptions{.ca_cert_path = cert.cert_path(), .clock = &clock});
  JsonWebhook sink("https://alerts.example.test:" + std::to_string(server.port()) + "/hook",
                   dispatcher);
  EXPECT_TRUE(sink.send(kCircuitOpened, "opened", AlertContext{.job_type = "orders"}));
  const bool flushed = dispatcher->flush(5s);
  detail::set_resolver_for_testing(nullptr);
  ASSERT_TRUE(flushed);
  EXPECT_EQ(dispatcher->delivered(), 0u);
  EXPECT_EQ(dispatcher->failed(), 1u);
  EXPECT_TRUE(server.requests().empty());
}

}  // namespace
}  // namespace prodsafe::alerts
