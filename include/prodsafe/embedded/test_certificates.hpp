// Certificates for TLS tests, made with the `openssl` command-line tool: a CA,
// a server and a client certificate it signs, and the broken variants a test
// of certificate errors needs (expired, wrong host, unrelated CA).
//
//   const TestCertificates certs = make_test_certificates(directory);
//   RedisServer server({.tls = RedisServerTls{.cert_file = certs.server_cert,
//                                             .key_file = certs.server_key,
//                                             .ca_file = certs.ca_cert}});
//
// Keys are EC P-256, signatures SHA-256, files PEM; private keys are written
// with mode 0600. Valid certificates are valid from now for 10 years.
//
// Thread safety: safe to call from several threads for different directories.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace prodsafe::embedded {

struct TestCertificates {
  // The CA that signs every certificate below except untrusted_client_cert
  // (CN "prodsafe test CA").
  std::filesystem::path ca_cert;
  std::filesystem::path ca_key;
  // A server certificate with subject alternative names DNS:localhost and
  // IP:127.0.0.1 (extended key usage serverAuth).
  std::filesystem::path server_cert;
  std::filesystem::path server_key;
  // A client certificate for mutual TLS (CN "prodsafe test client", extended
  // key usage clientAuth).
  std::filesystem::path client_cert;
  std::filesystem::path client_key;
  // Like server_cert, signed by the CA, but expired: valid only from
  // 2020-01-01 to 2020-01-02 (UTC).
  std::filesystem::path expired_server_cert;
  std::filesystem::path expired_server_key;
  // A valid server certificate signed by the CA for another host: its only
  // subject alternative name is DNS:wrong.example.
  std::filesystem::path wrong_host_server_cert;
  std::filesystem::path wrong_host_server_key;
  // A second CA, unrelated to ca_cert (CN "prodsafe other test CA"): a client
  // that trusts only it must reject server_cert.
  std::filesystem::path other_ca_cert;
  std::filesystem::path other_ca_key;
  // A client certificate signed by the other CA: a server that verifies
  // clients against ca_cert must reject it.
  std::filesystem::path untrusted_client_cert;
  std::filesystem::path untrusted_client_key;
};

// Creates `directory` if needed and writes the files above into it (ca.pem,
// ca.key, server.pem, server.key, client.pem, client.key, expired-server.pem,
// expired-server.key, wrong-host-server.pem, wrong-host-server.key,
// other-ca.pem, other-ca.key, untrusted-client.pem, untrusted-client.key),
// replacing files of those names. Returns their paths.
//
// `openssl` is the executable, looked up in PATH when it has no '/'. Throws
// ConfigError when it is not found (install the Debian package openssl), and
// IoError when the directory cannot be made or an openssl run fails or takes
// longer than `timeout` (the message has the command and the tail of its
// output).
[[nodiscard]] TestCertificates make_test_certificates(
    const std::filesystem::path& directory, const std::string& openssl = "openssl",
    std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace prodsafe::embedded
