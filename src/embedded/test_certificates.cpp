#include "prodsafe/embedded/test_certificates.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/child_process.hpp"

namespace prodsafe::embedded {
namespace {

namespace fs = std::filesystem;

// The openssl configuration for one CA: `openssl req` reads its [req] section
// (no prompts; the subject comes from -subj), `openssl ca` its [ca] section
// (a database in the work directory) and both the *_ext extension sections.
std::string ca_config(const fs::path& work, const std::string& ca) {
  return fmt::format(R"([req]
distinguished_name = subject
prompt = no
[subject]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid
[wrong_host_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
[ca]
default_ca = test_ca
[test_ca]
database = {0}/{1}.index
serial = {0}/{1}.serial
new_certs_dir = {0}
default_md = sha256
policy = any_subject
unique_subject = no
[any_subject]
commonName = supplied
)",
                     work.string(), ca);
}

void write_file(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::trunc);
  out << text;
  out.flush();
  if (!out) {
    throw IoError(fmt::format("cannot write {}: {}", file.string(), std::strerror(errno)));
  }
}

// Runs openssl commands in a work directory that is removed afterwards.
class Openssl {
 public:
  Openssl(fs::path executable, fs::path work, std::chrono::milliseconds timeout)
      : executable_(std::move(executable)), work_(std::move(work)), timeout_(timeout) {}

  void run(std::vector<std::string> arguments) const {
    arguments.insert(arguments.begin(), executable_.string());
    const fs::path output = work_ / "openssl.out";
    const int status = run_child(arguments, output, timeout_);
    if (status != 0) {
      std::string command;
      for (const std::string& argument : arguments) command += " " + argument;
      throw IoError(fmt::format("cannot make test certificates: `{}` failed with status {}:\n{}",
                                command.substr(1), status, last_lines(output, 10)));
    }
  }

  // A new EC P-256 private key, readable by its owner only.
  void make_key(const fs::path& key) const {
    std::error_code ignored;
    fs::remove(key, ignored);
    run({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
         key.string()});
    std::error_code error;
    fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write, error);
    if (error) {
      throw IoError(fmt::format("cannot make {} private: {}", key.string(), error.message()));
    }
  }

  // A self-signed CA certificate valid for 10 years, and its key.
  void make_ca(const std::string& name, const std::string& common_name, const fs::path& cert,
               const fs::path& key) const {
    write_file(config(name), ca_config(work_, name));
    write_file(work_ / (name + ".index"), "");
    write_file(work_ / (name + ".serial"), "1000\n");
    make_key(key);
    run({"req", "-x509", "-new", "-key", key.string(), "-sha256", "-days", "3650", "-subj",
         "/CN=" + common_name, "-config", config(name).string(), "-extensions", "ca_ext", "-out",
         cert.string()});
  }

  // A certificate and key signed by the CA `ca` (made by make_ca) with the
  // extension section `extensions`; `validity` are openssl ca's options.
  void sign(const std::string& ca, const fs::path& ca_cert, const fs::path& ca_key,
            const std::string& common_name, const std::string& extensions,
            const std::vector<std::string>& validity, const fs::path& cert,
            const fs::path& key) const {
    make_key(key);
    const fs::path request = work_ / "request.csr";
    run({"req", "-new", "-key", key.string(), "-subj", "/CN=" + common_name, "-config",
         config(ca).string(), "-out", request.string()});
    std::vector<std::string> arguments = {"ca",
                                          "-batch",
                                          "-notext",
                                          "-config",
                                          config(ca).string(),
                                          "-cert",
                                          ca_cert.string(),
                                          "-keyfile",
                                          ca_key.string(),
                                          "-in",
                                          request.string(),
                                          "-out",
                                          cert.string(),
                                          "-extensions",
                                          extensions};
    arguments.insert(arguments.end(), validity.begin(), validity.end());
    run(std::move(arguments));
  }

 private:
  fs::path config(const std::string& ca) const { return work_ / (ca + ".cnf"); }

  fs::path executable_;
  fs::path work_;
  std::chrono::milliseconds timeout_;
};

// Removes a directory when the scope ends.
class RemovedAtExit {
 public:
  explicit RemovedAtExit(fs::path directory) : directory_(std::move(directory)) {}
  ~RemovedAtExit() {
    std::error_code ignored;
    fs::remove_all(directory_, ignored);
  }
  RemovedAtExit(const RemovedAtExit&) = delete;
  RemovedAtExit& operator=(const RemovedAtExit&) = delete;

 private:
  fs::path directory_;
};

}  // namespace

TestCertificates make_test_certificates(const fs::path& directory, const std::string& openssl,
                                        std::chrono::milliseconds timeout) {
  const fs::path executable = find_executable(openssl);
  if (executable.empty()) {
    throw ConfigError(fmt::format(
        "cannot make test certificates: '{}' is {}; install the Debian package openssl", openssl,
        openssl.find('/') != std::string::npos ? "not an executable file" : "not in PATH"));
  }
  std::error_code error;
  const fs::path dir = fs::absolute(directory, error);
  if (!error) fs::create_directories(dir, error);
  if (error) {
    throw IoError(fmt::format("cannot make test certificates: cannot create {}: {}",
                              directory.string(), error.message()));
  }
  // A fresh work directory per call: the CA databases, requests and openssl's
  // output, none of which the caller needs.
  std::string pattern = (dir / ".openssl-work-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw IoError(fmt::format("cannot make test certificates: cannot create {}: {}", pattern,
                              std::strerror(errno)));
  }
  const fs::path work = pattern;
  const RemovedAtExit remove_work(work);
  const Openssl run(executable, work, timeout);

  TestCertificates c;
  c.ca_cert = dir / "ca.pem";
  c.ca_key = dir / "ca.key";
  c.server_cert = dir / "server.pem";
  c.server_key = dir / "server.key";
  c.client_cert = dir / "client.pem";
  c.client_key = dir / "client.key";
  c.expired_server_cert = dir / "expired-server.pem";
  c.expired_server_key = dir / "expired-server.key";
  c.wrong_host_server_cert = dir / "wrong-host-server.pem";
  c.wrong_host_server_key = dir / "wrong-host-server.key";
  c.other_ca_cert = dir / "other-ca.pem";
  c.other_ca_key = dir / "other-ca.key";
  c.untrusted_client_cert = dir / "untrusted-client.pem";
  c.untrusted_client_key = dir / "untrusted-client.key";

  const std::vector<std::string> ten_years = {"-days", "3650"};
  run.make_ca("ca", "prodsafe test CA", c.ca_cert, c.ca_key);
  run.sign("ca", c.ca_cert, c.ca_key, "localhost", "server_ext", ten_years, c.server_cert,
           c.server_key);
  run.sign("ca", c.ca_cert, c.ca_key, "prodsafe test client", "client_ext", ten_years,
           c.client_cert, c.client_key);
  run.sign("ca", c.ca_cert, c.ca_key, "localhost", "server_ext",
           {"-startdate", "20200101000000Z", "-enddate", "20200102000000Z"}, c.expired_server_cert,
           c.expired_server_key);
  run.sign("ca", c.ca_cert, c.ca_key, "wrong.example", "wrong_host_ext", ten_years,
           c.wrong_host_server_cert, c.wrong_host_server_key);
  run.make_ca("other-ca", "prodsafe other test CA", c.other_ca_cert, c.other_ca_key);
  run.sign("other-ca", c.other_ca_cert, c.other_ca_key, "prodsafe test client", "client_ext",
           ten_years, c.untrusted_client_cert, c.untrusted_client_key);
  return c;
}

}  // namespace prodsafe::embedded
