// Webhook URLs (src/alerts/webhook_url.hpp): parse_webhook_url returns the
// parts an HTTP client needs or throws InvalidArgument; the parts are
// well-formed and, written back as a URL, parse the same; an error message
// never shows the path, where webhook services put their secret token.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "fuzz_support.hpp"
#include "prodsafe/alerts/webhook.hpp"
#include "prodsafe/core/error.hpp"
#include "webhook_url.hpp"

namespace {

using prodsafe::alerts::detail::parse_webhook_url;
using prodsafe::alerts::detail::WebhookUrl;
using prodsafe::fuzz::require;

// `url` with kMarker, a secret token, at the start of its path; "" when it
// has no "://" or the marker would appear anywhere else in it.
constexpr std::string_view kMarker = "T0k3n-Q7zX9";

std::string with_marker_path(std::string_view url) {
  const std::size_t sep = url.find("://");
  if (sep == std::string_view::npos) return {};
  const std::size_t end = std::min(url.find_first_of("/?#", sep + 3), url.size());
  std::string marked =
      std::string(url.substr(0, end)) + "/" + std::string(kMarker) + std::string(url.substr(end));
  if (marked.find(kMarker) != marked.rfind(kMarker)) return {};
  return marked;
}

// No error message shows the path, where webhook services put their token.
void check_path_is_never_shown(std::string_view url) {
  const std::string marked = with_marker_path(url);
  if (marked.empty()) return;
  try {
    (void)parse_webhook_url(marked);
  } catch (const prodsafe::InvalidArgument& error) {
    require(std::string_view(error.what()).find(kMarker) == std::string_view::npos,
            "an error message shows the webhook URL's path", error.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view url = prodsafe::fuzz::as_text(data, size);
  check_path_is_never_shown(url);
  WebhookUrl parsed;
  try {
    parsed = parse_webhook_url(url);
  } catch (const prodsafe::InvalidArgument& error) {
    if (url.empty()) return 0;
    // "webhook URL '<the URL, path and credentials redacted>' <what>"
    const std::string quoted = "webhook URL '" + prodsafe::alerts::redact_webhook_url(url) + "' ";
    // what() is a C string: it ends at a NUL the URL may hold.
    require(std::string_view(error.what())
                .starts_with(std::string_view(quoted).substr(0, quoted.find('\0'))),
            "an error message does not quote the redacted URL", error.what());
    return 0;
  }
  require(!parsed.host.empty(), "an empty host was accepted");
  require(parsed.port >= 1 && parsed.port <= 65535, "a port out of range was accepted");
  require(parsed.target.starts_with('/'), "the target does not start with '/'");
  require(parsed.target.find('#') == std::string::npos, "the fragment was kept");
  for (unsigned char c : parsed.host + parsed.target) {
    require(c > ' ' && c != 0x7f, "whitespace or a control character was accepted");
  }
  const bool ipv6 = parsed.host.find(':') != std::string::npos;
  const std::string host = ipv6 ? "[" + parsed.host + "]" : parsed.host;
  const std::string rewritten = fmt::format("{}://{}:{}{}", parsed.https ? "https" : "http", host,
                                            parsed.port, parsed.target);
  WebhookUrl again;
  try {
    again = parse_webhook_url(rewritten);
  } catch (const prodsafe::InvalidArgument&) {
    prodsafe::fuzz::finding("a parsed webhook URL written back does not parse");
  }
  require(again.https == parsed.https && again.host == parsed.host && again.port == parsed.port &&
              again.target == parsed.target,
          "a parsed webhook URL written back parses differently");
  return 0;
}
