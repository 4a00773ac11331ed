// The TLS flags of every command that takes a Redis URL, named like
// redis-cli's. Each string flag takes its default from an environment
// variable when TLS is on (a rediss:// URL or --tls); a flag on the command
// line wins over its variable. The variables are ignored for a plain
// connection, so they can be set for a whole environment.
//
//   --tls            TLS even for a redis:// URL (a rediss:// URL always is)
//   --cacert FILE    $PRODSAFE_TLS_CACERT     CA certificates (PEM) to trust
//   --cacertdir DIR  $PRODSAFE_TLS_CACERTDIR  directory of hashed CA certificates
//   --cert FILE      $PRODSAFE_TLS_CERT       client certificate (PEM), with --key
//   --key FILE       $PRODSAFE_TLS_KEY        client private key (PEM), with --cert
//   --sni NAME       $PRODSAFE_TLS_SNI        server name to send and verify
//   --insecure       do not verify the server's certificate (warns on stderr)
//
// Thread safety: used by main() alone, before any command runs.
#pragma once

#include <array>
#include <string>

#include "prodsafe/redis/options.hpp"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace prodsafe::redis {
struct Endpoint;
}

namespace prodsafe::cli {

class TlsFlags {
 public:
  // Registers the flags on `command`, which fills this object while parsing:
  // it must stay where it is (no copies, no moves).
  explicit TlsFlags(CLI::App& command);
  TlsFlags(const TlsFlags&) = delete;
  TlsFlags& operator=(const TlsFlags&) = delete;

  // The settings the flags ask for, and the environment's defaults when TLS
  // is on for `endpoint`.
  [[nodiscard]] redis::TlsOptions options(const redis::Endpoint& endpoint) const;

  // True when a TLS flag is on the command line.
  [[nodiscard]] bool given() const { return tls_ || settings_given(); }
  // True when --tls is on the command line.
  [[nodiscard]] bool tls() const noexcept { return tls_; }
  // True when a TLS flag other than --tls (a file, --sni, --insecure) is on
  // the command line.
  [[nodiscard]] bool settings_given() const;

  // Checks options(endpoint) before anything runs
  // (redis::validate_tls_options and redis::validate_tls_endpoint), naming
  // each setting as the user gave it: the flag, or the environment variable.
  // Throws InvalidArgument (a usage error) or ConfigError (a file that cannot
  // be used). With --insecure, warns on stderr, once per process.
  void check(const redis::Endpoint& endpoint) const;

 private:
  struct Setting {
    const char* flag;      // "--cacert"
    const char* variable;  // "PRODSAFE_TLS_CACERT"
    const char* field;     // "redis::Options::tls.ca_file"
    std::string value{};
    CLI::Option* option = nullptr;
  };
  enum Index { kCaFile, kCaDir, kCertFile, kKeyFile, kSni, kCount };

  // The value given with the flag, else (`use_variables`) the variable's, else "".
  [[nodiscard]] static std::string value(const Setting& setting, bool use_variables);
  [[nodiscard]] bool tls_on(const redis::Endpoint& endpoint) const;
  // `message` with each redis::Options field replaced by how the user set it.
  [[nodiscard]] std::string in_flag_terms(std::string message, bool use_variables) const;

  std::array<Setting, kCount> settings_;
  bool tls_ = false;
  bool insecure_ = false;
};

}  // namespace prodsafe::cli
