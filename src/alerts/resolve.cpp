#include "resolve.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

namespace prodsafe::alerts::detail {
namespace {

std::atomic<std::size_t> running{0};

std::mutex resolver_mutex;  // guards test_resolver
Resolver test_resolver;

// Numeric addresses of `host` from getaddrinfo(); `numeric_only` refuses names.
std::vector<std::string> getaddrinfo_addresses(const std::string& host, bool numeric_only) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // No AI_ADDRCONFIG: it drops localhost on a host with only a loopback
  // interface; an address that cannot be reached fails fast and the next is tried.
  hints.ai_flags = numeric_only ? AI_NUMERICHOST : 0;
  addrinfo* found = nullptr;
  const int status = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (status != 0) throw std::runtime_error(::gai_strerror(status));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owned(found, ::freeaddrinfo);
  std::vector<std::string> addresses;
  for (const addrinfo* each = found; each != nullptr; each = each->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = nullptr;
    if (each->ai_family == AF_INET) {
      raw = &reinterpret_cast<const sockaddr_in*>(each->ai_addr)->sin_addr;
    } else if (each->ai_family == AF_INET6) {
      raw = &reinterpret_cast<const sockaddr_in6*>(each->ai_addr)->sin6_addr;
    }
    if (raw != nullptr && ::inet_ntop(each->ai_family, raw, text, sizeof(text)) != nullptr) {
      std::string address(text);
      bool seen = false;
      for (const auto& known : addresses) seen = seen || known == address;
      if (!seen) addresses.push_back(std::move(address));
    }
  }
  if (addresses.empty()) throw std::runtime_error("no IPv4 or IPv6 address");
  return addresses;
}

// What the helper thread and the caller share; the last of them frees it.
struct Lookup {
  std::mutex mutex;  // guards done and result
  std::condition_variable_any finished;
  bool done = false;
  Resolution result;
};

}  // namespace

Resolution resolve_host(const std::string& host, std::chrono::steady_clock::time_point deadline,
                        std::stop_token stop) {
  try {
    return {.addresses = getaddrinfo_addresses(host, true)};
  } catch (const std::exception&) {
    // a name: look it up below
  }
  Resolver resolver;
  {
    std::lock_guard lock(resolver_mutex);
    resolver = test_resolver;
  }
  if (!resolver)
    resolver = [](const std::string& name) { return getaddrinfo_addresses(name, false); };

  if (running.fetch_add(1) >= kMaxAbandonedLookups) {
    running.fetch_sub(1);
    return {.error = "DNS lookup not started: earlier lookups still running"};
  }
  auto lookup = std::make_shared<Lookup>();
  try {
    // The thread inherits the caller's signal mask (the dispatcher's worker
    // blocks SIGPIPE).
    std::thread([lookup, host, resolver = std::move(resolver)] {
      Resolution result;
      try {
        result.addresses = resolver(host);
        if (result.addresses.empty()) result.error = "no address";
      } catch (const std::exception& error) {
        result.error = error.what();
      }
      {
        std::lock_guard lock(lookup->mutex);
        lookup->result = std::move(result);
        lookup->done = true;
      }
      lookup->finished.notify_all();
      running.fetch_sub(1);
    }).detach();
  } catch (const std::system_error& error) {
    running.fetch_sub(1);
    return {.error = std::string("DNS lookup not started: ") + error.what()};
  }
  std::unique_lock lock(lookup->mutex);
  if (!lookup->finished.wait_until(lock, stop, deadline, [&] { return lookup->done; })) {
    return {.error = stop.stop_requested() ? "DNS lookup cancelled" : "DNS lookup timed out"};
  }
  Resolution result = std::move(lookup->result);
  if (!result.error.empty()) result.error = "DNS lookup failed: " + result.error;
  return result;
}

void set_resolver_for_testing(Resolver resolver) {
  std::lock_guard lock(resolver_mutex);
  test_resolver = std::move(resolver);
}

std::size_t lookups_running() { return running.load(); }

}  // namespace prodsafe::alerts::detail
