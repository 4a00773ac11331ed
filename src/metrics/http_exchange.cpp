#include "http_exchange.hpp"

#include <algorithm>
#include <cctype>
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
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

// The next word of `line` up to a space, consumed from it.
std::string_view next_word(std::string_view& line) noexcept {
  const std::size_t space = line.find(' ');
  const std::string_view word = line.substr(0, space);
  line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  return word;
}

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return std::string_view(value);
  }
  return std::nullopt;
}

std::size_t end_of_head(std::string_view received) noexcept {
  const std::size_t crlf = received.find("\r\n\r\n");
  const std::size_t lf = received.find("\n\n");
  if (crlf == std::string_view::npos && lf == std::string_view::npos) return std::string_view::npos;
  if (lf == std::string_view::npos || (crlf != std::string_view::npos && crlf < lf)) {
    return crlf + 4;
  }
  return lf + 2;
}

std::optional<HttpRequest> parse_request_head(std::string_view head) {
  std::size_t end = head.find('\n');
  std::string_view line = head.substr(0, end);
  if (line.ends_with('\r')) line.remove_suffix(1);
  HttpRequest request;
  request.method = next_word(line);
  const std::string_view target = next_word(line);
  const std::string_view version = next_word(line);
  if (request.method.empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") ||
      !line.empty()) {
    return std::nullopt;
  }
  request.target = target;
  const std::size_t question = target.find('?');
  request.path = target.substr(0, question);
  if (question != std::string_view::npos) request.query = target.substr(question + 1);
  while (end != std::string_view::npos) {
    const std::size_t start = end + 1;
    end = head.find('\n', start);
    std::string_view field = head.substr(start, end == std::string_view::npos ? end : end - start);
    if (field.ends_with('\r')) field.remove_suffix(1);
    if (field.empty()) continue;  // the blank line that ends the head
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    std::string name(field.substr(0, colon));
    if (name.find_first_of(" \t") != std::string::npos) return std::nullopt;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    request.headers.emplace_back(std::move(name), trim(field.substr(colon + 1)));
  }
  return request;
}

std::string http_response(int status, std::string_view content_type, std::string_view body,
                          bool head_only, std::string_view extra_headers) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{}",
      status, reason(status), content_type, body.size(), extra_headers,
      head_only ? std::string_view() : body);
}

std::string error_response(int status) {
  return http_response(status, kTextType, fmt::format("{}\n", reason(status)));
}

std::string respond(const HttpRequest& request,
                    const std::function<std::string()>& render_metrics) {
  if (request.path != "/metrics" && request.path != "/healthz") return error_response(404);
  const bool head_only = request.method == "HEAD";
  if (request.method != "GET" && !head_only) {
    return http_response(405, kTextType, "Method Not Allowed\n", false, "Allow: GET, HEAD\r\n");
  }
  if (request.path == "/healthz") return http_response(200, kTextType, "ok\n", head_only);
  try {
    return http_response(200, kMetricsType, render_metrics(), head_only);
  } catch (const std::exception& error) {
    logger()->error("metrics: rendering /metrics failed: {}", error.what());
    return error_response(500);
  }
}

}  // namespace prodsafe::metrics::detail
