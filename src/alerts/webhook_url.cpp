#include "webhook_url.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "prodsafe/alerts/webhook.hpp"
#include "prodsafe/core/error.hpp"

namespace prodsafe::alerts {
namespace {

constexpr std::string_view kSchemeSeparator = "://";

[[noreturn]] void refuse(std::string_view url, std::string_view what) {
  throw InvalidArgument("webhook URL '" + redact_webhook_url(url) + "' " + std::string(what));
}

bool is_host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_';
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string redact_webhook_url(std::string_view url) {
  const std::size_t separator = url.find(kSchemeSeparator);
  const std::size_t start = separator == std::string_view::npos ? 0 : separator + 3;
  const std::size_t end = std::min(url.find_first_of("/?#", start), url.size());
  std::string_view authority = url.substr(start, end - start);
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  std::string redacted(url.substr(0, start));
  redacted += authority;
  if (end < url.size()) redacted += "/***";
  return redacted;
}

void validate_webhook_url(std::string_view url) { (void)detail::parse_webhook_url(url); }

namespace detail {

WebhookUrl parse_webhook_url(std::string_view url) {
  if (url.empty()) throw InvalidArgument("webhook URL is empty");
  if (std::any_of(url.begin(), url.end(), [](unsigned char c) { return c <= ' ' || c == 0x7f; })) {
    refuse(url, "contains whitespace or a control character; percent-encode it");
  }
  const std::size_t separator = url.find(kSchemeSeparator);
  if (separator == std::string_view::npos) refuse(url, "must start with http:// or https://");
  const std::string scheme = lower(url.substr(0, separator));
  if (scheme != "http" && scheme != "https") {
    refuse(url, "has the scheme '" + scheme + "'; only http:// and https:// are supported");
  }
  WebhookUrl parsed;
  parsed.https = scheme == "https";
  parsed.port = parsed.https ? 443 : 80;

  const std::size_t start = separator + kSchemeSeparator.size();
  const std::size_t end = std::min(url.find_first_of("/?#", start), url.size());
  std::string_view authority = url.substr(start, end - start);
  if (authority.find('@') != std::string_view::npos) {
    refuse(url, "carries credentials (user:password@); put them in the path or a token instead");
  }
  bool has_port = false;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) refuse(url, "has an IPv6 host without its closing ']'");
    parsed.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') refuse(url, "has text after its IPv6 host");
    has_port = !rest.empty();
    if (has_port) port_text = rest.substr(1);
    if (parsed.host.empty() ||
        parsed.host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos) {
      refuse(url, "has a malformed IPv6 host");
    }
  } else {
    const std::size_t colon = authority.find(':');
    parsed.host = std::string(authority.substr(0, colon));
    has_port = colon != std::string_view::npos;
    if (has_port) port_text = authority.substr(colon + 1);
    if (parsed.host.empty()) refuse(url, "has no host");
    if (!std::all_of(parsed.host.begin(), parsed.host.end(), is_host_char)) {
      refuse(url, "has a malformed host '" + parsed.host + "'");
    }
  }
  if (has_port) {
    int port = 0;
    const auto [last, error] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || error != std::errc{} || last != port_text.data() + port_text.size() ||
        port < 1 || port > 65535) {
      refuse(url, "has a bad port '" + std::string(port_text) + "' (want 1-65535)");
    }
    parsed.port = port;
  }

  std::string_view target = url.substr(end);
  target = target.substr(0, target.find('#'));
  // Built with append, not "/" + string: GCC 12 at -O3 reports a false
  // -Wrestrict on the operator+ form.
  parsed.target.clear();
  if (target.empty() || target.front() != '/') parsed.target.push_back('/');
  parsed.target.append(target);
  return parsed;
}

}  // namespace detail
}  // namespace prodsafe::alerts
