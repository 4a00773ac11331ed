#include "prodsafe/tracing/trace_context.hpp"

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>

namespace prodsafe::tracing {
namespace {

constexpr char kHex[] = "0123456789abcdef";

template <std::size_t N>
std::string hex(const std::array<std::uint8_t, N>& bytes) {
  std::string out(2 * N, '0');
  for (std::size_t i = 0; i < N; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 0x0f];
  }
  return out;
}

int lower_hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

template <std::size_t N>
bool parse_hex(std::string_view text, std::array<std::uint8_t, N>& out) noexcept {
  if (text.size() != 2 * N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    const int high = lower_hex_digit(text[2 * i]);
    const int low = lower_hex_digit(text[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    out[i] = static_cast<std::uint8_t>(high * 16 + low);
  }
  return true;
}

template <std::size_t N>
bool all_zero(const std::array<std::uint8_t, N>& bytes) noexcept {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

// A per-thread generator, seeded from the kernel, reseeded when the process
// is not the one that seeded it (a fork()ed child would repeat its parent's
// ids otherwise).
struct Generator {
  pid_t pid = -1;
  std::mt19937_64 engine{};

  std::uint64_t next() noexcept {
    const pid_t now = ::getpid();
    if (now != pid) {
      std::uint64_t seed[4] = {};
      if (::getrandom(seed, sizeof(seed), 0) != static_cast<ssize_t>(sizeof(seed))) {
        // No kernel randomness (a seccomp filter): fall back on the clock and
        // the pid, which still differ between processes.
        seed[0] = static_cast<std::uint64_t>(std::random_device{}());
        seed[1] = static_cast<std::uint64_t>(now);
      }
      std::seed_seq sequence{seed[0], seed[1], seed[2], seed[3]};
      engine.seed(sequence);
      pid = now;
    }
    return engine();
  }
};

thread_local Generator generator;

template <std::size_t N>
std::array<std::uint8_t, N> random_bytes() noexcept {
  std::array<std::uint8_t, N> out{};
  do {
    for (std::size_t i = 0; i < N; i += 8) {
      const std::uint64_t word = generator.next();
      std::memcpy(out.data() + i, &word, std::min<std::size_t>(8, N - i));
    }
  } while (all_zero(out));
  return out;
}

}  // namespace

bool TraceContext::valid() const noexcept { return !all_zero(trace_id) && !all_zero(span_id); }

TraceId new_trace_id() noexcept { return random_bytes<16>(); }
SpanId new_span_id() noexcept { return random_bytes<8>(); }

std::string to_hex(const TraceId& id) { return hex(id); }
std::string to_hex(const SpanId& id) { return hex(id); }

std::optional<TraceContext> parse_traceparent(std::string_view header) noexcept {
  // version "-" trace-id "-" parent-id "-" trace-flags: 2+1+32+1+16+1+2 = 55.
  constexpr std::size_t kLength = 55;
  if (header.size() < kLength) return std::nullopt;
  std::array<std::uint8_t, 1> version{};
  std::array<std::uint8_t, 1> flags{};
  TraceContext context;
  if (!parse_hex(header.substr(0, 2), version) || version[0] == 0xff) return std::nullopt;
  if (header[2] != '-' || header[35] != '-' || header[52] != '-') return std::nullopt;
  if (!parse_hex(header.substr(3, 32), context.trace_id) ||
      !parse_hex(header.substr(36, 16), context.span_id) ||
      !parse_hex(header.substr(53, 2), flags)) {
    return std::nullopt;
  }
  // Version 00 is exactly 55 characters; a later version may append fields
  // after a '-'.
  if (header.size() > kLength && (version[0] == 0 || header[kLength] != '-')) return std::nullopt;
  if (!context.valid()) return std::nullopt;
  context.sampled = (flags[0] & 0x01) != 0;
  return context;
}

std::string format_traceparent(const TraceContext& context) {
  return "00-" + hex(context.trace_id) + "-" + hex(context.span_id) +
         (context.sampled ? "-01" : "-00");
}

}  // namespace prodsafe::tracing
