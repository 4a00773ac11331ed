#include "tls_transport.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"

namespace prodsafe::redis::detail {
namespace {

using Kind = TransportError::Kind;

// The oldest error OpenSSL queued on this thread, as text ("" for none).
std::string openssl_error() {
  const unsigned long code = ERR_peek_last_error();
  if (code == 0) return {};
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// --- The socket BIO: send() with MSG_NOSIGNAL, recv(), never a signal. ----

int bio_write(BIO* bio, const char* data, int size) {
  auto* state = static_cast<TlsSocketState*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  ssize_t sent;
  do {
    sent = ::send(state->fd, data, static_cast<std::size_t>(size), MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent >= 0) return static_cast<int>(sent);
  state->last_errno = errno;
  if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(bio);
  return -1;
}

int bio_read(BIO* bio, char* data, int size) {
  auto* state = static_cast<TlsSocketState*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  ssize_t got;
  do {
    got = ::recv(state->fd, data, static_cast<std::size_t>(size), 0);
  } while (got < 0 && errno == EINTR);
  if (got >= 0) return static_cast<int>(got);  // 0: the end of the stream
  state->last_errno = errno;
  if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(bio);
  return -1;
}

long bio_ctrl(BIO*, int command, long, void*) {
  // OpenSSL flushes after each record it writes; there is nothing to flush.
  return command == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* socket_bio_method() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* made =
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "prodsafe socket (MSG_NOSIGNAL)");
    if (made == nullptr || BIO_meth_set_write(made, bio_write) != 1 ||
        BIO_meth_set_read(made, bio_read) != 1 || BIO_meth_set_ctrl(made, bio_ctrl) != 1 ||
        BIO_meth_set_create(made, bio_create) != 1) {
      throw std::bad_alloc();
    }
    return made;
  }();
  return method;
}

// --- The context: trust, client certificate, protocol floor. --------------

[[noreturn]] void context_error(std::string_view what, std::string_view option,
                                const std::string& file) {
  throw ConfigError(fmt::format("TLS: cannot use {} '{}' (redis::TlsOptions::{}): {}", what, file,
                                option, openssl_error()));
}

SSL_CTX* make_context(const TlsOptions& options) {
  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  if (context == nullptr) throw std::bad_alloc();
  try {
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    SSL_CTX_set_mode(context, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!options.ca_file.empty() || !options.ca_dir.empty()) {
      const char* file = options.ca_file.empty() ? nullptr : options.ca_file.c_str();
      const char* dir = options.ca_dir.empty() ? nullptr : options.ca_dir.c_str();
      if (SSL_CTX_load_verify_locations(context, file, dir) != 1) {
        if (file != nullptr) context_error("the CA file", "ca_file", options.ca_file);
        context_error("the CA directory", "ca_dir", options.ca_dir);
      }
    } else if (SSL_CTX_set_default_verify_paths(context) != 1) {
      throw ConfigError(
          fmt::format("TLS: cannot load the system's CA certificates ({}); set ca_file (--cacert)",
                      openssl_error()));
    }
    if (!options.cert_file.empty()) {
      if (SSL_CTX_use_certificate_chain_file(context, options.cert_file.c_str()) != 1) {
        context_error("the client certificate", "cert_file", options.cert_file);
      }
      if (SSL_CTX_use_PrivateKey_file(context, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1 &&
          ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
        context_error("the client key", "key_file", options.key_file);
      }
      if (SSL_CTX_check_private_key(context) != 1) {
        throw ConfigError(fmt::format("TLS: the key '{}' does not belong to the certificate '{}'",
                                      options.key_file, options.cert_file));
      }
    }
    return context;
  } catch (...) {
    SSL_CTX_free(context);
    ERR_clear_error();  // the message has what it said
    throw;
  }
}

bool is_ip_address(const std::string& host) {
  unsigned char address[16];
  return ::inet_pton(AF_INET, host.c_str(), address) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), address) == 1;
}

// Why the server's certificate was refused, and what to change.
std::string verify_failure(long result, const std::string& peer) {
  const std::string reason = X509_verify_cert_error_string(result);
  switch (result) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return fmt::format(
          "the server's certificate does not name '{}' ({}); connect by a name its subject "
          "alternative names list, or set sni (--sni) to one of them",
          peer, reason);
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return fmt::format(
          "the server's certificate is outside its validity period ({}); renew it on the "
          "server (or check this machine's clock)",
          reason);
    default:
      return fmt::format(
          "the server's certificate is not trusted ({}); set ca_file (--cacert) or ca_dir "
          "(--cacertdir) to the CA that signed it",
          reason);
  }
}

// What an SSL_ERROR_SSL means for the user, from the reason OpenSSL queued.
TransportError protocol_failure(SSL* ssl, std::string_view operation, const std::string& peer) {
  const unsigned long code = ERR_peek_last_error();
  const int reason = ERR_GET_REASON(code);
  const std::string detail = openssl_error();
  if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    return {Kind::kRejected,
            fmt::format("TLS {}: {}", operation, verify_failure(SSL_get_verify_result(ssl), peer))};
  }
  if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
      reason == SSL_R_UNEXPECTED_RECORD) {
    return {Kind::kRejected,
            fmt::format("TLS {}: the server did not answer in TLS ({}); is this a plain port? "
                        "Use redis:// for it, or the server's tls-port",
                        operation, detail)};
  }
  if (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
      reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE) {
    return {Kind::kRejected,
            fmt::format("TLS {}: the server refused this client ({}); it demands a client "
                        "certificate: set cert_file and key_file (--cert, --key)",
                        operation, detail)};
  }
  if (reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE) {
    return {Kind::kRejected,
            fmt::format("TLS {}: the server refused the handshake ({}); it may demand a client "
                        "certificate (--cert, --key), or share no protocol version or cipher "
                        "with this client (TLS 1.2 at least)",
                        operation, detail)};
  }
  if (reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA) {
    return {Kind::kRejected,
            fmt::format("TLS {}: the server does not trust the client certificate ({}); use "
                        "one signed by the CA in the server's tls-ca-cert-file",
                        operation, detail)};
  }
  return {Kind::kFailed, fmt::format("TLS {}: {}", operation, detail)};
}

}  // namespace

TlsTransport::TlsTransport(Socket socket, const TlsOptions& options, const std::string& host,
                           Deadline deadline)
    : socket_(std::move(socket)), peer_(options.sni.empty() ? host : options.sni) {
  bio_state_.fd = socket_.get();
  if (!options.verify_peer) {
    static std::once_flag warned;
    std::call_once(warned, [] {
      logger()->warn(
          "TLS peer verification is off (TlsOptions::verify_peer = false, --insecure): anyone "
          "on the network path can impersonate the Redis server");
    });
  }
  const BIO_METHOD* method = socket_bio_method();
  ERR_clear_error();
  context_ = make_context(options);
  ssl_ = SSL_new(context_);
  BIO* bio = BIO_new(method);
  if (ssl_ == nullptr || bio == nullptr) {
    BIO_free(bio);
    SSL_free(ssl_);
    SSL_CTX_free(context_);
    throw std::bad_alloc();
  }
  BIO_set_data(bio, &bio_state_);
  SSL_set_bio(ssl_, bio, bio);  // the SSL owns the BIO from here
  const bool address = is_ip_address(peer_);
  // SNI carries host names only (RFC 6066).
  if (!address) SSL_set_tlsext_host_name(ssl_, peer_.c_str());
  if (options.verify_peer) {
    SSL_set_verify(ssl_, SSL_VERIFY_PEER, nullptr);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = address ? X509_VERIFY_PARAM_set1_ip_asc(param, peer_.c_str())
                            : X509_VERIFY_PARAM_set1_host(param, peer_.c_str(), 0);
    if (set != 1) {
      SSL_free(ssl_);
      SSL_CTX_free(context_);
      throw InvalidArgument(fmt::format("TLS: '{}' cannot be checked as a host name", peer_));
    }
  } else {
    SSL_set_verify(ssl_, SSL_VERIFY_NONE, nullptr);
  }
  try {
    for (;;) {
      ERR_clear_error();
      bio_state_.last_errno = 0;
      const int result = SSL_connect(ssl_);
      if (result == 1) break;
      wait_or_throw(result, "handshake", deadline);
    }
  } catch (...) {
    SSL_free(ssl_);
    SSL_CTX_free(context_);
    ERR_clear_error();  // leave no stale error to other OpenSSL users of this thread
    throw;
  }
}

TlsTransport::~TlsTransport() {
  // No SSL_shutdown(): a close_notify would be a write, and a child of fork()
  // must not write to its parent's connection. Redis needs none.
  SSL_free(ssl_);
  SSL_CTX_free(context_);
}

void TlsTransport::wait_or_throw(int result, std::string_view operation, Deadline deadline) {
  try {
    wait_or_throw_unclean(result, operation, deadline);
  } catch (...) {
    ERR_clear_error();  // the message has what it said
    throw;
  }
}

void TlsTransport::wait_or_throw_unclean(int result, std::string_view operation,
                                         Deadline deadline) {
  const int error = SSL_get_error(ssl_, result);
  short events = 0;
  switch (error) {
    case SSL_ERROR_WANT_READ:
      events = POLLIN;
      break;
    case SSL_ERROR_WANT_WRITE:
      events = POLLOUT;
      break;
    case SSL_ERROR_ZERO_RETURN:
      throw TransportError(Kind::kClosed,
                           fmt::format("TLS {}: the server closed the connection", operation));
    case SSL_ERROR_SYSCALL: {
      const int saved = bio_state_.last_errno;
      if (operation == "write" && (saved == EPIPE || saved == ECONNRESET)) {
        // The server may have said why before it closed (an alert refusing
        // this client's certificate): read it, if it is there.
        ERR_clear_error();
        char ignored[256];
        std::size_t got = 0;
        const int read = SSL_read_ex(ssl_, ignored, sizeof ignored, &got);
        if (read != 1 && SSL_get_error(ssl_, read) == SSL_ERROR_SSL) {
          throw protocol_failure(ssl_, operation, peer_);
        }
      }
      if (saved == 0 || saved == EPIPE || saved == ECONNRESET) {
        throw TransportError(Kind::kClosed,
                             fmt::format("TLS {}: the server closed the connection{}", operation,
                                         operation == "handshake" ? " (is it a TLS port?)" : ""));
      }
      throw TransportError(Kind::kFailed,
                           fmt::format("TLS {}: {}", operation, std::strerror(saved)));
    }
    case SSL_ERROR_SSL:
      throw protocol_failure(ssl_, operation, peer_);
    default:
      throw TransportError(Kind::kFailed,
                           fmt::format("TLS {}: error {} ({})", operation, error, openssl_error()));
  }
  if (!wait_for(socket_.get(), events, deadline)) {
    throw TransportError(Kind::kTimeout, fmt::format("TLS {}", operation));
  }
}

void TlsTransport::write_all(std::string_view data, Deadline deadline) {
  while (!data.empty()) {
    ERR_clear_error();
    bio_state_.last_errno = 0;
    std::size_t written = 0;
    const int result = SSL_write_ex(ssl_, data.data(), data.size(), &written);
    if (result == 1) {
      data.remove_prefix(written);
      continue;
    }
    wait_or_throw(result, "write", deadline);
  }
}

std::size_t TlsTransport::read_some(std::span<char> buffer, Deadline deadline) {
  for (;;) {
    ERR_clear_error();
    bio_state_.last_errno = 0;
    std::size_t got = 0;
    const int result = SSL_read_ex(ssl_, buffer.data(), buffer.size(), &got);
    if (result == 1) return got;
    wait_or_throw(result, "read", deadline);
  }
}

bool TlsTransport::has_buffered() const noexcept { return SSL_pending(ssl_) > 0; }

bool TlsTransport::wait_readable(Deadline deadline) {
  return has_buffered() || wait_for(socket_.get(), POLLIN, deadline);
}

}  // namespace prodsafe::redis::detail
