// The HTTP/1.1 part of MetricsServer, without sockets: where a request's head
// ends, and the response (status line, headers, body) to send for it. Every
// response closes the connection.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace prodsafe::metrics::detail {

// The offset just past the blank line that ends a request head ("\r\n\r\n",
// or "\n\n" from a lenient client), or npos while it has not arrived.
[[nodiscard]] std::size_t end_of_head(std::string_view received) noexcept;

// The whole response to a complete request head: GET or HEAD of /metrics
// (the page `render_metrics` returns; 500 if it throws) or /healthz ("ok");
// 404 for another path, 405 for another method, 400 for a head that is not
// HTTP/1.x.
[[nodiscard]] std::string respond(std::string_view head,
                                  const std::function<std::string()>& render_metrics);

// A response with a short text body saying what `status` means (400, 404,
// 405, 408, 431, 500, ...).
[[nodiscard]] std::string error_response(int status);

}  // namespace prodsafe::metrics::detail
