#include "prodsafe/core/random.hpp"

#include <sys/random.h>

#include <unistd.h>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>

namespace prodsafe {
namespace {

// Only when the kernel has no getrandom (pre-3.17) or refuses it: pid, time and
// a counter, still unique within a host.
void fallback_fill(std::array<unsigned char, 16>& bytes) {
  static std::atomic<std::uint64_t> counter{0};
  const std::uint64_t time =
      static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  const std::uint64_t mixed = (static_cast<std::uint64_t>(::getpid()) << 32) ^
                              (counter.fetch_add(1, std::memory_order_relaxed) + 1);
  std::memcpy(bytes.data(), &time, 8);
  std::memcpy(bytes.data() + 8, &mixed, 8);
}

}  // namespace

std::string random_id() {
  std::array<unsigned char, 16> bytes{};
  std::size_t filled = 0;
  while (filled < bytes.size()) {
    const ssize_t n = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fallback_fill(bytes);
      break;
    }
    filled += static_cast<std::size_t>(n);
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string id;
  id.reserve(32);
  for (unsigned char byte : bytes) {
    id.push_back(kDigits[byte >> 4]);
    id.push_back(kDigits[byte & 0x0F]);
  }
  return id;
}

}  // namespace prodsafe
