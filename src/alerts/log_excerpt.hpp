// Internal: what of an endpoint's answer may be written to a log.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace prodsafe::alerts::detail {

inline constexpr std::size_t kExcerptBytes = 1024;

// `body` fit for one log line: every occurrence of a secret replaced by "***",
// then bytes that are not printable UTF-8 escaped (\n, \t, \\, \xNN; C1
// controls and bidirectional overrides as \u{NNNN}), cut to at most
// `limit` bytes plus a note of the size. `truncated`: `body` is the start of a
// longer answer, so a secret cut off at its end is dropped too. Secrets
// shorter than 4 bytes are ignored.
[[nodiscard]] std::string log_excerpt(std::string_view body, bool truncated,
                                      const std::vector<std::string>& secrets,
                                      std::size_t limit = kExcerptBytes);

// The parts of a webhook URL that may be secret: the URL itself, its path and
// query, credentials, and each path segment, query name or value of 8 bytes
// or more (Slack's token is one segment); never an empty string.
[[nodiscard]] std::vector<std::string> url_secrets(std::string_view url);

}  // namespace prodsafe::alerts::detail
