// Requests to the HTTP server under /metrics and the dashboard
// (src/metrics/http_exchange.hpp): whatever a client sends, end_of_head finds
// a head inside what arrived (or none); parse_request_head accepts it or not
// (HttpServer answers 400), and an accepted one has a path starting with '/'
// and lower-case header names; respond() gives one well-formed HTTP/1.1
// response that closes the connection and whose Content-Length is its body's
// length.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "http_exchange.hpp"

namespace {

using prodsafe::fuzz::require;

void check_response(std::string_view response, bool head_request) {
  require(response.starts_with("HTTP/1.1 ") && response.size() > 12, "no status line", response);
  const std::string_view code = response.substr(9, 3);
  require(code.find_first_not_of("0123456789") == std::string_view::npos, "no status code",
          response);
  const std::size_t end = response.find("\r\n\r\n");
  require(end != std::string_view::npos, "the response head does not end", response);
  const std::string_view head = response.substr(0, end + 2);
  require(head.find("\r\nConnection: close\r\n") != std::string_view::npos,
          "the response does not close the connection", response);
  const std::size_t length_at = head.find("\r\nContent-Length: ");
  require(length_at != std::string_view::npos, "no Content-Length", response);
  std::size_t length = 0;
  for (std::size_t i = length_at + 18; i < head.size() && head[i] != '\r'; ++i) {
    require(head[i] >= '0' && head[i] <= '9', "a bad Content-Length", response);
    length = length * 10 + static_cast<std::size_t>(head[i] - '0');
  }
  const std::size_t body = response.size() - (end + 4);
  // A HEAD answer announces the body it leaves out.
  require(head_request ? body == 0 : body == length, "Content-Length is not the body's length",
          response);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view received = prodsafe::fuzz::as_text(data, size);
  const std::size_t end = prodsafe::metrics::detail::end_of_head(received);
  if (end == std::string_view::npos) return 0;
  require(end >= 2 && end <= received.size(), "the head ends outside what arrived", received);
  const std::string_view head = received.substr(0, end);
  const auto request = prodsafe::metrics::detail::parse_request_head(head);
  if (!request) {
    check_response(prodsafe::metrics::detail::error_response(400), false);
    return 0;
  }
  require(request->path.starts_with('/') && request->target.starts_with(request->path),
          "a path that is not the target's", head);
  for (const auto& [name, value] : request->headers) {
    require(
        !name.empty() && name.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ :") == std::string::npos,
        "a header name not lower case, or with a space or colon", head);
  }
  const std::string response =
      prodsafe::metrics::detail::respond(*request, [] { return std::string("up 1\n"); });
  const bool head_request = head.starts_with("HEAD ") && response.starts_with("HTTP/1.1 200");
  check_response(response, head_request);
  return 0;
}
