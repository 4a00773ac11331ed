// Transport over TLS (OpenSSL 3) on a TCP socket prodsafe owns. The socket is
// reached through a BIO of ours that sends with MSG_NOSIGNAL, so TLS never
// raises SIGPIPE either.
#pragma once

#include <string>

#include "prodsafe/redis/options.hpp"
#include "socket.hpp"
#include "transport.hpp"

struct ssl_st;
struct ssl_ctx_st;

namespace prodsafe::redis::detail {

// What the socket BIO under a TlsTransport shares with it.
struct TlsSocketState {
  int fd = -1;
  int last_errno = 0;  // of the last failed send() or recv()
};

class TlsTransport final : public Transport {
 public:
  // Makes the handshake on `socket` by `deadline`, checking the server's
  // certificate against `options` and `host` (options.sni when set). Throws
  // ConfigError when a file in `options` cannot be used, and TransportError:
  // kRejected when the server or its certificate is not the one configured
  // (the message says which check failed and what to change), kTimeout,
  // kClosed or kFailed.
  TlsTransport(Socket socket, const TlsOptions& options, const std::string& host,
               Deadline deadline);
  ~TlsTransport() override;
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;

  void write_all(std::string_view data, Deadline deadline) override;
  std::size_t read_some(std::span<char> buffer, Deadline deadline) override;
  [[nodiscard]] bool has_buffered() const noexcept override;
  [[nodiscard]] bool wait_readable(Deadline deadline) override;
  [[nodiscard]] int fd() const noexcept override { return socket_.get(); }

 private:
  // Waits for what OpenSSL asked for after `result`, or throws.
  void wait_or_throw(int result, std::string_view operation, Deadline deadline);
  // wait_or_throw() without clearing OpenSSL's error queue on a throw.
  void wait_or_throw_unclean(int result, std::string_view operation, Deadline deadline);

  Socket socket_;
  TlsSocketState bio_state_;
  ssl_ctx_st* context_ = nullptr;
  ssl_st* ssl_ = nullptr;
  std::string peer_;  // the name (or address) checked, for messages
};

}  // namespace prodsafe::redis::detail
