#include "http_exchange.hpp"

#include <exception>

#include <fmt/format.h>

#include "prodsafe/core/log.hpp"

namespace prodsafe::metrics::detail {
namespace {

constexpr std::string_view kMetricsType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kTextType = "text/plain; charset=utf-8";

std::string_view reason(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    default:
      return "Error";
  }
}

std::string response(int status, std::string_view content_type, std::string_view body,
                     bool with_body, std::string_view extra_headers = {}) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{}",
      status, reason(status), content_type, body.size(), extra_headers,
      with_body ? body : std::string_view());
}

// The next word of `line` up to a space, consumed from it.
std::string_view next_word(std::string_view& line) noexcept {
  const std::size_t space = line.find(' ');
  const std::string_view word = line.substr(0, space);
  line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  return word;
}

}  // namespace

std::size_t end_of_head(std::string_view received) noexcept {
  const std::size_t crlf = received.find("\r\n\r\n");
  const std::size_t lf = received.find("\n\n");
  if (crlf == std::string_view::npos && lf == std::string_view::npos) return std::string_view::npos;
  if (lf == std::string_view::npos || (crlf != std::string_view::npos && crlf < lf)) {
    return crlf + 4;
  }
  return lf + 2;
}

std::string error_response(int status) {
  return response(status, kTextType, fmt::format("{}\n", reason(status)), true);
}

std::string respond(std::string_view head, const std::function<std::string()>& render_metrics) {
  std::string_view line = head.substr(0, head.find('\n'));
  if (line.ends_with('\r')) line.remove_suffix(1);
  const std::string_view method = next_word(line);
  const std::string_view target = next_word(line);
  const std::string_view version = next_word(line);
  if (method.empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") ||
      !line.empty()) {
    return error_response(400);
  }
  const std::string_view path = target.substr(0, target.find('?'));
  if (path != "/metrics" && path != "/healthz") return error_response(404);
  const bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) {
    return response(405, kTextType, "Method Not Allowed\n", true, "Allow: GET, HEAD\r\n");
  }
  if (path == "/healthz") return response(200, kTextType, "ok\n", !head_only);
  try {
    return response(200, kMetricsType, render_metrics(), !head_only);
  } catch (const std::exception& error) {
    logger()->error("metrics: rendering /metrics failed: {}", error.what());
    return error_response(500);
  }
}

}  // namespace prodsafe::metrics::detail
