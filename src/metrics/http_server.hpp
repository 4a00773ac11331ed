// A small HTTP/1.1 server on one thread of its own, built so that its clients
// cannot hurt the process that runs it: MetricsServer serves /metrics with it
// and `prodsafe dashboard` its page. It holds at most `max_connections`
// sockets; every request must arrive whole within `request_timeout`, its head
// within `max_header_bytes` and its body within `max_body_bytes`; when all
// connections are taken, a new one replaces the one that has waited longest;
// each response closes its connection (no keep-alive). Writes never raise
// SIGPIPE and no signal disposition is changed.
//
// The handler runs on the server's thread, one request at a time: it must be
// quick (the dashboard answers from a snapshot another thread refreshes).
//
// Thread safety: construct and destroy from one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "http_exchange.hpp"

namespace prodsafe::metrics::detail {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: a free port chosen by the system
  std::size_t max_connections = 64;
  std::chrono::milliseconds request_timeout{5000};    // accept to the end of the request
  std::chrono::milliseconds response_timeout{10000};  // end of request to the last byte sent
  std::size_t max_header_bytes = 8 * 1024;
  // The largest request body (Content-Length) accepted; a larger one gets
  // 413, a chunked one 411. 0: bodies are not read (the handler sees an empty
  // body and what was sent is discarded).
  std::size_t max_body_bytes = 0;
};

// The whole response (http_response()) to a complete request. An exception
// becomes a 500 and is logged. For HEAD only the response's head is sent.
using HttpHandler = std::function<std::string(const HttpRequest&)>;

// Called on the server's thread when a connection is closed before it was
// answered: "evicted", "request_timeout", "response_timeout",
// "header_too_large" or "body_too_large".
using DropObserver = std::function<void(std::string_view reason)>;

class HttpServer {
 public:
  // Starts listening and serving. Throws ConfigError (naming host and port)
  // when the host does not resolve and IoError when the address cannot be
  // bound or a descriptor cannot be had. `options` are not validated here:
  // the owner checks its own options and names them in its errors.
  HttpServer(HttpServerOptions options, HttpHandler handler, DropObserver on_drop = {});
  // Stops serving and closes every connection; returns within milliseconds.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  [[nodiscard]] int port() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "http://host:port" (an IPv6 host in brackets).
[[nodiscard]] std::string http_base_url(const std::string& host, int port);

}  // namespace prodsafe::metrics::detail
