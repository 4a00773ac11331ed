#include "webhook_attempt.hpp"

#include <memory>
#include <utility>

#include <httplib.h>

#include "resolve.hpp"

namespace prodsafe::alerts::detail {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

bool retryable(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection:
    case httplib::Error::ConnectionTimeout:
    case httplib::Error::Read:
    case httplib::Error::Write:
    case httplib::Error::SSLConnection:
    case httplib::Error::Unknown:
      return true;
    default:  // Canceled, certificate problems, ...: repeating cannot help
      return false;
  }
}

AttemptResult classify(const httplib::Response& response) {
  const int status = response.status;
  AttemptResult result{.status = status};
  result.detail = "HTTP " + std::to_string(status);
  if (status >= 200 && status < 300) {
    result.outcome = Outcome::kDelivered;
  } else if (status >= 500 || status == 429) {
    result.outcome = Outcome::kRetryable;
  }
  if ((status == 429 || status == 503) && response.has_header("Retry-After")) {
    result.retry_after = response.get_header_value("Retry-After");
  }
  return result;
}

std::unique_ptr<httplib::ClientImpl> make_client(const WebhookUrl& url,
                                                 const WebhookOptions& options) {
  if (url.https) {
    auto tls = std::make_unique<httplib::SSLClient>(url.host, url.port);
    if (!options.ca_cert_path.empty()) tls->set_ca_cert_path(options.ca_cert_path);
    tls->enable_server_certificate_verification(true);
    return tls;
  }
  return std::make_unique<httplib::ClientImpl>(url.host, url.port);
}

// httplib takes timeouts as seconds and microseconds; at least 1 ms.
void set_timeouts(httplib::ClientImpl& client, milliseconds limit) {
  limit = std::max(limit, milliseconds(1));
  client.set_connection_timeout(limit);
  client.set_read_timeout(limit);
  client.set_write_timeout(limit);
}

}  // namespace

AttemptResult post_once(const WebhookUrl& url, const WebhookRequest& request,
                        const WebhookOptions& options, AttemptWatchdog& watchdog,
                        std::stop_token stop) {
  const auto deadline = steady_clock::now() + options.timeout;
  const std::string timed_out =
      "timed out after " + std::to_string(options.timeout.count()) + " ms";

  const Resolution resolution = resolve_host(url.host, deadline, stop);
  if (resolution.addresses.empty()) {
    const bool late = steady_clock::now() >= deadline;
    return {.outcome = Outcome::kRetryable,
            .detail = late ? timed_out + " (" + resolution.error + ")" : resolution.error};
  }

  AttemptResult result{.outcome = Outcome::kRetryable, .detail = timed_out};
  watchdog.begin(deadline);
  // Each address in turn while the deadline allows: one refusing connections
  // (an IPv6 address without a route, a host down) must not fail the attempt.
  for (const std::string& address : resolution.addresses) {
    const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
    if (remaining.count() <= 0 || watchdog.expired()) break;
    const std::unique_ptr<httplib::ClientImpl> client = make_client(url, options);
    if (!client->is_valid()) {
      result = {.outcome = Outcome::kFinal, .detail = "TLS client could not be set up"};
      break;
    }
    // The host name still goes into the Host header, SNI and certificate
    // checks; only the connection uses the address looked up.
    client->set_hostname_addr_map({{url.host, address}});
    set_timeouts(*client, remaining);
    client->set_keep_alive(false);
    client->set_follow_location(false);
    client->set_socket_options([&watchdog](int fd) { watchdog.adopt_socket(fd); });

    httplib::Request post;
    post.method = "POST";
    post.path = url.target;
    post.headers = {{"User-Agent", "prodsafe"}, {"Content-Type", request.content_type}};
    post.body = request.body;
    std::string body;
    bool truncated = false;
    post.content_receiver = [&](const char* data, std::size_t size, std::uint64_t, std::uint64_t) {
      const std::size_t room = kKeptBodyBytes - body.size();
      if (size > room) truncated = true;
      body.append(data, std::min(size, room));
      return true;  // read on (the deadline bounds it): the status is the answer
    };
    httplib::Response response;
    httplib::Error error = httplib::Error::Success;
    const bool answered = client->send(post, response, error);
    const bool expired = watchdog.expired();
    if (answered) {
      result = classify(response);
      result.body = std::move(body);
      result.body_truncated = truncated;
      break;
    }
    if (expired) {
      result = {.outcome = Outcome::kRetryable, .detail = timed_out};
      break;
    }
    result = {.outcome = retryable(error) ? Outcome::kRetryable : Outcome::kFinal,
              .detail = "no answer (" + httplib::to_string(error) + ")"};
    if (error != httplib::Error::Connection) break;
  }
  watchdog.end();
  return result;
}

}  // namespace prodsafe::alerts::detail
