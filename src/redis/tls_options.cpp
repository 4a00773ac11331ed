// validate_tls_options and validate_tls_endpoint (prodsafe/redis/options.hpp):
// checks that need no OpenSSL and no network.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/options.hpp"

namespace prodsafe::redis {
namespace {

constexpr std::size_t kMaxHostName = 253;
constexpr std::size_t kMaxLabel = 63;

enum class PathKind { kFile, kDirectory };

// Throws ConfigError unless `path` (the value of tls.<field>) is a readable
// file, or a readable and searchable directory. An empty path is not set.
void check_path(std::string_view field, const std::string& path, PathKind kind,
                std::string_view what_it_is) {
  if (path.empty()) return;
  const auto fail = [&](std::string_view problem) {
    throw ConfigError(fmt::format("redis::Options::tls.{} '{}' {}; it must name {}", field, path,
                                  problem, what_it_is));
  };
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (status.type() == std::filesystem::file_type::not_found) fail("does not exist");
  if (error) fail(fmt::format("cannot be examined ({})", error.message()));
  if (kind == PathKind::kFile && std::filesystem::is_directory(status)) fail("is a directory");
  if (kind == PathKind::kDirectory && !std::filesystem::is_directory(status)) {
    fail("is not a directory");
  }
  const int mode = kind == PathKind::kFile ? R_OK : R_OK | X_OK;
  if (::access(path.c_str(), mode) != 0) {
    const int saved = errno;
    fail(fmt::format("cannot be read by this process ({})", std::strerror(saved)));
  }
}

// `text` with each byte outside printable ASCII written as \xNN, so that a
// message quoting it stays one readable line (and is not cut at a NUL).
std::string printable(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f) {
      out.push_back(c);
    } else {
      out += fmt::format("\\x{:02x}", static_cast<unsigned>(byte));
    }
  }
  return out;
}

bool is_label_character(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

// Empty when `name` is a host name (RFC 1123), else what is wrong with it.
std::string host_name_problem(std::string_view name) {
  if (name.size() > kMaxHostName) {
    return fmt::format("is {} characters long; a host name has at most {}", name.size(),
                       kMaxHostName);
  }
  std::string_view rest = name;
  while (true) {
    const std::size_t dot = rest.find('.');
    const std::string_view label = rest.substr(0, dot);
    if (label.empty()) return "has an empty label (two dots in a row, or a leading dot)";
    if (label.size() > kMaxLabel) {
      return fmt::format("has a label of {} characters; a label has at most {}", label.size(),
                         kMaxLabel);
    }
    for (const char c : label) {
      if (!is_label_character(c)) {
        const auto byte = static_cast<unsigned char>(c);
        return byte >= 0x21 && byte < 0x7f
                   ? fmt::format("contains '{}'", c)
                   : fmt::format("contains the byte 0x{:02x}", static_cast<unsigned>(byte));
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return fmt::format("has the label '{}', which starts or ends with '-'", label);
    }
    if (dot == std::string_view::npos) return {};
    rest = rest.substr(dot + 1);
    if (rest.empty()) return {};  // a trailing dot: a fully qualified name
  }
}

}  // namespace

void validate_tls_options(const TlsOptions& tls) {
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    const bool has_cert = !tls.cert_file.empty();
    throw InvalidArgument(fmt::format(
        "redis::Options::tls.{} is set but redis::Options::tls.{} is not: a client certificate "
        "needs its private key; set both redis::Options::tls.cert_file and "
        "redis::Options::tls.key_file, or neither",
        has_cert ? "cert_file" : "key_file", has_cert ? "key_file" : "cert_file"));
  }
  if (!tls.sni.empty()) {
    const std::string problem = host_name_problem(tls.sni);
    if (!problem.empty()) {
      throw InvalidArgument(fmt::format(
          "redis::Options::tls.sni '{}' {}: it must be a host name (letters, digits, '-' and "
          "'.'), such as redis.example.com; leave it empty to use the URL's host",
          printable(tls.sni), problem));
    }
  }
  check_path("ca_file", tls.ca_file, PathKind::kFile,
             "a PEM file of the CA certificates that signed the server's certificate");
  check_path("ca_dir", tls.ca_dir, PathKind::kDirectory,
             "a directory of CA certificates prepared with `openssl rehash`");
  check_path("cert_file", tls.cert_file, PathKind::kFile, "the client certificate's PEM file");
  check_path("key_file", tls.key_file, PathKind::kFile, "the client's private key's PEM file");
}

void validate_tls_endpoint(const Endpoint& endpoint, const TlsOptions& tls) {
  const bool tls_on = endpoint.tls || tls.enabled;
  if (tls_on && endpoint.transport == Endpoint::Transport::kUnix) {
    throw InvalidArgument(fmt::format(
        "TLS was asked for (redis::Options::tls.enabled) but {} is a unix socket: TLS is only "
        "for TCP; use unix:// without TLS, or rediss://host:port for TLS",
        endpoint.redacted()));
  }
  if (tls_on) return;
  const std::pair<std::string_view, std::string_view> settings[] = {{"ca_file", tls.ca_file},
                                                                    {"ca_dir", tls.ca_dir},
                                                                    {"cert_file", tls.cert_file},
                                                                    {"key_file", tls.key_file},
                                                                    {"sni", tls.sni}};
  for (const auto& [field, value] : settings) {
    if (value.empty()) continue;
    throw InvalidArgument(fmt::format(
        "redis::Options::tls.{} is set but TLS is off for {}: the connection would be plain "
        "text; use a rediss:// URL or set redis::Options::tls.enabled, or leave "
        "redis::Options::tls.{} empty",
        field, endpoint.redacted(), field));
  }
}

}  // namespace prodsafe::redis
