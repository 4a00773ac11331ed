// Internal: one HTTP POST of a webhook request, ending by a deadline.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <stop_token>
#include <string>

#include "attempt_watchdog.hpp"
#include "prodsafe/alerts/webhook_dispatcher.hpp"
#include "webhook_url.hpp"

namespace prodsafe::alerts::detail {

enum class Outcome { kDelivered, kRetryable, kFinal };

// How much of an answer's body is kept (the rest is read and discarded).
inline constexpr std::size_t kKeptBodyBytes = 16 * 1024;

struct AttemptResult {
  Outcome outcome = Outcome::kFinal;
  std::string detail{};  // "HTTP 503", "timed out after 5000 ms", ...: never a URL or a body
  int status = 0;        // 0: no answer
  std::optional<std::string> retry_after{};  // the header, on a 429 or 503
  std::string body{};                        // the answer's first kKeptBodyBytes
  bool body_truncated = false;
};

// POSTs `request` to `url`: DNS lookup, connect, TLS, sending and the whole
// answer all end by now + `options.timeout` (`watchdog` enforces it; its
// cancel() or `stop` end the attempt sooner).
[[nodiscard]] AttemptResult post_once(const WebhookUrl& url, const WebhookRequest& request,
                                      const WebhookOptions& options, AttemptWatchdog& watchdog,
                                      std::stop_token stop);

}  // namespace prodsafe::alerts::detail
