// The HTTP/1.1 part of HttpServer, without sockets: where a request's head
// ends, what it asks for, and the response (status line, headers, body) to
// send. Every response closes the connection.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace prodsafe::metrics::detail {

// A request as HttpServer hands it to its handler.
struct HttpRequest {
  std::string method{};  // "GET", "POST", ... as sent
  std::string target{};  // "/api/state?x=1"
  std::string path{};    // "/api/state"
  std::string query{};   // "x=1" (without the '?'), still percent-encoded
  // Header names in lower case, values with surrounding spaces removed, in
  // the order sent.
  std::vector<std::pair<std::string, std::string>> headers{};
  std::string body{};
  // The client's address ("127.0.0.1:54321", "[::1]:54321"), for logs.
  std::string peer{};
  // The port the server listens on (HttpServer sets it).
  int local_port = 0;
  // The first value of header `name` (lower case), if sent.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const;
};

// The offset just past the blank line that ends a request head ("\r\n\r\n",
// or "\n\n" from a lenient client), or npos while it has not arrived.
[[nodiscard]] std::size_t end_of_head(std::string_view received) noexcept;

// The request a complete head asks for (the body is left empty), or nullopt
// when it is not an HTTP/1.x request line followed by "name: value" headers.
[[nodiscard]] std::optional<HttpRequest> parse_request_head(std::string_view head);

// A whole response: status line, Content-Type, Content-Length,
// `extra_headers` (each ending in "\r\n"), Connection: close, and the body
// unless `head_only` (the answer to HEAD keeps Content-Length).
[[nodiscard]] std::string http_response(int status, std::string_view content_type,
                                        std::string_view body, bool head_only = false,
                                        std::string_view extra_headers = {});

// The response MetricsServer sends: GET or HEAD of /metrics (the page
// `render_metrics` returns; 500 if it throws) or /healthz ("ok"); 404 for
// another path, 405 for another method.
[[nodiscard]] std::string respond(const HttpRequest& request,
                                  const std::function<std::string()>& render_metrics);

// A response with a short text body saying what `status` means (400, 404,
// 405, 408, 413, 431, 500, ...).
[[nodiscard]] std::string error_response(int status);

}  // namespace prodsafe::metrics::detail
