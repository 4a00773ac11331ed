// Transport over a plain TCP or unix socket.
#pragma once

#include <memory>

#include "socket.hpp"
#include "transport.hpp"

namespace prodsafe::redis::detail {

class PlainTransport final : public Transport {
 public:
  explicit PlainTransport(Socket socket) noexcept : socket_(std::move(socket)) {}

  void write_all(std::string_view data, Deadline deadline) override;
  std::size_t read_some(std::span<char> buffer, Deadline deadline) override;
  [[nodiscard]] bool has_buffered() const noexcept override { return false; }
  [[nodiscard]] bool wait_readable(Deadline deadline) override;
  [[nodiscard]] int fd() const noexcept override { return socket_.get(); }

 private:
  Socket socket_;
};

}  // namespace prodsafe::redis::detail
