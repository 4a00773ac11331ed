#include "plain_transport.hpp"

#include <poll.h>

namespace prodsafe::redis::detail {

void PlainTransport::write_all(std::string_view data, Deadline deadline) {
  while (!data.empty()) {
    const std::size_t sent = send_some(socket_.get(), data.data(), data.size());
    if (sent == 0 && !wait_for(socket_.get(), POLLOUT, deadline)) {
      throw TransportError(TransportError::Kind::kTimeout, "write");
    }
    data.remove_prefix(sent);
  }
}

std::size_t PlainTransport::read_some(std::span<char> buffer, Deadline deadline) {
  for (;;) {
    const std::size_t got = receive_some(socket_.get(), buffer.data(), buffer.size());
    if (got > 0) return got;
    if (!wait_for(socket_.get(), POLLIN, deadline)) {
      throw TransportError(TransportError::Kind::kTimeout, "read");
    }
  }
}

bool PlainTransport::wait_readable(Deadline deadline) {
  return wait_for(socket_.get(), POLLIN, deadline);
}

}  // namespace prodsafe::redis::detail
