// Internal: a webhook URL split into what an HTTP client needs.
#pragma once

#include <string>
#include <string_view>

namespace prodsafe::alerts::detail {

struct WebhookUrl {
  bool https = false;
  std::string host{};    // without brackets for IPv6
  int port = 0;          // the scheme's default when the URL names none
  std::string target{};  // path and query, at least "/"; the fragment is dropped
};

// Throws InvalidArgument (see validate_webhook_url).
[[nodiscard]] WebhookUrl parse_webhook_url(std::string_view url);

}  // namespace prodsafe::alerts::detail
