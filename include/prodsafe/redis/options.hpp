// Connection and pool settings for prodsafe::redis::Client.
//
// Every duration is at most kMaxOptionDuration (24 h): longer ones overflow
// when added to a time point or turned into a socket timeout, and "wait
// forever" is spelled 0 where it is allowed.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace prodsafe::redis {

inline constexpr std::chrono::milliseconds kMaxOptionDuration = std::chrono::hours(24);

struct Options {
  // Time allowed to open a connection, including AUTH and SELECT; 0 to 24 h.
  // Default: 1 s. 0 means wait as long as the operating system does.
  std::chrono::milliseconds connect_timeout{1000};
  // Time allowed for one command's (or one pipeline's) reply to arrive; 0 to
  // 24 h. Default: 1 s. 0 means wait forever (a paused server then hangs the
  // caller).
  std::chrono::milliseconds command_timeout{1000};
  // Most connections the pool opens. Default: 8. Must be at least 1.
  std::size_t pool_size = 8;
  // Time a caller waits for a free connection when all are in use; then the
  // call fails with prodsafe::Timeout; 0 to 24 h. Default: 1 s. 0 means wait
  // forever.
  std::chrono::milliseconds pool_checkout_timeout{1000};
  // After a failed connect, the next attempt waits this long, doubling on each
  // further failure up to reconnect_backoff_max; a success resets it.
  // Callers that arrive inside the wait block until it ends if their checkout
  // deadline allows, else they fail at once with StoreUnavailable.
  // Each 0 to 24 h. Defaults: 50 ms and 1 s. 0 for the initial value means no
  // backoff.
  std::chrono::milliseconds reconnect_backoff_initial{50};
  std::chrono::milliseconds reconnect_backoff_max{1000};
  // Prepended to every key that prodsafe's modules build (Client::key()), so
  // tenants sharing a server stay apart. Default: empty.
  std::string key_prefix{};
  // Credentials that override the URL's. Default: use the URL's.
  std::optional<std::string> user{};
  std::optional<std::string> password{};
};

// Throws InvalidArgument, naming the field and its range, when an option is
// out of the range its comment gives. Connection and ConnectionPool (so
// Client) call it before they use `options`.
void validate_options(const Options& options);

}  // namespace prodsafe::redis
