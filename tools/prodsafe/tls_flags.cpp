#include "tls_flags.hpp"

#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string_view>

#include <CLI/CLI.hpp>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/endpoint.hpp"

namespace prodsafe::cli {
namespace {

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

void warn_insecure_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::cerr << "prodsafe: warning: --insecure: the Redis server's certificate and name are not "
                 "checked, so anyone on the network path can pose as it and read what is sent "
                 "(passwords included); trust its CA with --cacert instead\n";
  });
}

}  // namespace

TlsFlags::TlsFlags(CLI::App& command)
    : settings_{{{"--cacert", "PRODSAFE_TLS_CACERT", "redis::Options::tls.ca_file"},
                 {"--cacertdir", "PRODSAFE_TLS_CACERTDIR", "redis::Options::tls.ca_dir"},
                 {"--cert", "PRODSAFE_TLS_CERT", "redis::Options::tls.cert_file"},
                 {"--key", "PRODSAFE_TLS_KEY", "redis::Options::tls.key_file"},
                 {"--sni", "PRODSAFE_TLS_SNI", "redis::Options::tls.sni"}}} {
  const std::string group = "TLS (rediss:// URLs, or --tls)";
  const char* help[kCount] = {
      "PEM file of the CA certificates to trust (default: $PRODSAFE_TLS_CACERT, else the "
      "system's)",
      "Directory of CA certificates prepared with `openssl rehash` (default: "
      "$PRODSAFE_TLS_CACERTDIR)",
      "Client certificate (PEM) for a server that demands one; needs --key (default: "
      "$PRODSAFE_TLS_CERT)",
      "Private key (PEM) of --cert (default: $PRODSAFE_TLS_KEY)",
      "Server name to send and to verify the certificate against (default: $PRODSAFE_TLS_SNI, "
      "else the URL's host)"};
  command.add_flag("--tls", tls_, "Speak TLS to Redis even for a redis:// URL")->group(group);
  for (int i = 0; i < kCount; ++i) {
    Setting& setting = settings_[i];
    setting.option = command.add_option(setting.flag, setting.value, help[i])
                         ->group(group)
                         ->type_name(i == kCaDir ? "DIR"
                                     : i == kSni ? "NAME"
                                                 : "FILE");
  }
  command
      .add_flag("--insecure", insecure_,
                "Do not verify the server's certificate or name (anyone on the path can pose as "
                "the server; warns)")
      ->group(group);
}

std::string TlsFlags::value(const Setting& setting, bool use_variables) {
  if (setting.option->count() > 0) return setting.value;
  const char* variable = use_variables ? std::getenv(setting.variable) : nullptr;
  return variable != nullptr ? variable : "";
}

bool TlsFlags::tls_on(const redis::Endpoint& endpoint) const { return endpoint.tls || tls_; }

redis::TlsOptions TlsFlags::options(const redis::Endpoint& endpoint) const {
  const bool use_variables = tls_on(endpoint);
  return {.enabled = tls_,
          .ca_file = value(settings_[kCaFile], use_variables),
          .ca_dir = value(settings_[kCaDir], use_variables),
          .cert_file = value(settings_[kCertFile], use_variables),
          .key_file = value(settings_[kKeyFile], use_variables),
          .sni = value(settings_[kSni], use_variables),
          .verify_peer = !insecure_};
}

bool TlsFlags::settings_given() const {
  if (insecure_) return true;
  for (const Setting& setting : settings_) {
    if (setting.option->count() > 0) return true;
  }
  return false;
}

std::string TlsFlags::in_flag_terms(std::string message, bool use_variables) const {
  for (const Setting& setting : settings_) {
    const bool from_variable =
        setting.option->count() == 0 && !value(setting, use_variables).empty();
    replace_all(message, setting.field,
                from_variable ? std::string("$") + setting.variable : std::string(setting.flag));
  }
  replace_all(message, "redis::Options::tls.enabled", "--tls");
  return message;
}

void TlsFlags::check(const redis::Endpoint& endpoint) const {
  const redis::TlsOptions tls = options(endpoint);
  const bool use_variables = tls_on(endpoint);
  try {
    redis::validate_tls_options(tls);
    redis::validate_tls_endpoint(endpoint, tls);
  } catch (const InvalidArgument& error) {
    throw InvalidArgument(in_flag_terms(error.what(), use_variables));
  } catch (const ConfigError& error) {
    throw ConfigError(in_flag_terms(error.what(), use_variables));
  }
  if (!tls.verify_peer) warn_insecure_once();
}

}  // namespace prodsafe::cli
