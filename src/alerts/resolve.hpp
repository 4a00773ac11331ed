// Internal: DNS resolution that gives up at a deadline.
//
// getaddrinfo() cannot be cancelled and may block for the resolver's own
// timeouts (tens of seconds against a dead name server), so a name that is not
// an IP address is looked up on a helper thread that the caller stops waiting
// for at the deadline. An abandoned lookup finishes on its own and frees what
// it holds; at most kMaxAbandonedLookups may run at once, past which a lookup
// fails at once instead of starting another thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <stop_token>
#include <string>
#include <vector>

namespace prodsafe::alerts::detail {

inline constexpr std::size_t kMaxAbandonedLookups = 4;

struct Resolution {
  std::vector<std::string> addresses{};  // numeric, in the resolver's order
  std::string error{};                   // set when addresses is empty
};

// `host`'s addresses (an IP address is its own), or an error saying why not:
// the resolver failed, the deadline passed, or `stop` was requested.
[[nodiscard]] Resolution resolve_host(const std::string& host,
                                      std::chrono::steady_clock::time_point deadline,
                                      std::stop_token stop = {});

// Test seam: replaces the name lookup (not the IP-address shortcut) until
// reset with null. The function returns addresses or throws std::exception
// with the reason; it runs on the helper thread.
using Resolver = std::function<std::vector<std::string>(const std::string& host)>;
void set_resolver_for_testing(Resolver resolver);

// Lookups started and not yet finished (abandoned ones included).
[[nodiscard]] std::size_t lookups_running();

}  // namespace prodsafe::alerts::detail
