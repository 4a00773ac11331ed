// Shared by the fuzz targets: how a finding is reported, and Redis replies
// built from fuzz bytes.
//
// A target calls the real parser on the bytes and checks what it can cheaply:
// the parser returns a value or throws a prodsafe::Error. Any other exception
// escapes LLVMFuzzerTestOneInput (libFuzzer reports it as a crash); a broken
// property calls finding(), which aborts. The same files are linked into a
// small driver (corpus_driver.cpp) that ctest runs over fuzz/corpus/, so the
// targets are built and run by every `make test`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "prodsafe/redis/reply.hpp"

namespace prodsafe::fuzz {

// Aborts with `what` and, when given, the text it is about (escaped).
[[noreturn]] inline void finding(const char* what, std::string_view context = {}) {
  std::fprintf(stderr, "fuzz finding: %s\n", what);
  if (!context.empty()) {
    std::string escaped;
    for (unsigned char c : context) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      escaped += c >= 0x20 && c < 0x7f ? std::string(1, static_cast<char>(c)) : hex;
    }
    std::fprintf(stderr, "  about: %s\n", escaped.c_str());
  }
  std::abort();
}

inline void require(bool holds, const char* what, std::string_view context = {}) {
  if (!holds) finding(what, context);
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Reads RESP2 replies ("+OK\r\n", "-ERR x\r\n", ":1\r\n", "$3\r\nabc\r\n",
// "$-1\r\n", "*2\r\n..."), leniently: a line may end in "\n" alone. Malformed
// or too deeply nested input ends the list.
class RespReader {
 public:
  explicit RespReader(std::string_view text) : text_(text) {}

  std::optional<redis::Reply> next(int depth = 0) {
    if (depth > 8 || text_.empty()) return std::nullopt;
    const char kind = text_.front();
    text_.remove_prefix(1);
    const auto line = read_line();
    if (!line) return std::nullopt;
    switch (kind) {
      case '+':
        return redis::Reply::status(std::string(*line));
      case '-':
        return redis::Reply::error(std::string(*line));
      case ':': {
        const auto value = number(*line);
        if (!value) return std::nullopt;
        return redis::Reply::integer(*value);
      }
      case '$': {
        const auto length = number(*line);
        if (!length) return std::nullopt;
        if (*length < 0) return redis::Reply::nil();
        if (static_cast<unsigned long long>(*length) > text_.size()) return std::nullopt;
        std::string value(text_.substr(0, static_cast<std::size_t>(*length)));
        text_.remove_prefix(static_cast<std::size_t>(*length));
        (void)read_line();  // the "\r\n" after the bytes
        return redis::Reply::string(std::move(value));
      }
      case '*': {
        const auto count = number(*line);
        if (!count) return std::nullopt;
        if (*count < 0) return redis::Reply::nil();
        // Each element takes at least three bytes: no huge reservations.
        if (static_cast<unsigned long long>(*count) > text_.size() / 3 + 1) return std::nullopt;
        std::vector<redis::Reply> elements;
        for (long long i = 0; i < *count; ++i) {
          auto element = next(depth + 1);
          if (!element) return std::nullopt;
          elements.push_back(std::move(*element));
        }
        return redis::Reply::array(std::move(elements));
      }
      default:
        return std::nullopt;
    }
  }

  std::vector<redis::Reply> all() {
    std::vector<redis::Reply> replies;
    while (auto reply = next()) replies.push_back(std::move(*reply));
    return replies;
  }

 private:
  std::optional<std::string_view> read_line() {
    const std::size_t end = text_.find('\n');
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view line = text_.substr(0, end);
    text_.remove_prefix(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  }

  static std::optional<long long> number(std::string_view text) {
    const bool negative = !text.empty() && text.front() == '-';
    if (negative) text.remove_prefix(1);
    if (text.empty() || text.size() > 18) return std::nullopt;  // no overflow
    long long value = 0;
    for (char c : text) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + (c - '0');
    }
    return negative ? -value : value;
  }

  std::string_view text_;
};

}  // namespace prodsafe::fuzz
