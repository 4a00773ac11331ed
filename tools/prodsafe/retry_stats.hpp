// The fleet's retry patterns as `prodsafe retry stats` and the dashboard read
// them: the attempt histograms (FleetHistogram, retry:histogram:<job_type>)
// and the open retry windows (RedisRetryWindowStore, retry:window:<job_id>).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "prodsafe/retry/histogram.hpp"

namespace prodsafe::redis {
class Client;
}
namespace prodsafe::retry {
class FleetHistogram;
}

namespace prodsafe::retry {
class FleetHistogram;
}

namespace prodsafe::cli {

struct HistogramRow {
  std::string job_type{};
  std::optional<retry::RetryHistogram::Counts> counts{};  // nullopt: damaged
  std::string error{};
};

struct WindowRow {
  std::string job_id{};
  std::string job_type{};
  int attempts = 0;
  std::chrono::milliseconds open_for{0};     // since the first attempt
  std::chrono::milliseconds since_last{0};   // since the last attempt
  std::chrono::milliseconds expires_in{-1};  // -1: no expiry
  std::string error{};                       // damaged: why
};

struct RetryStats {
  std::vector<HistogramRow> histograms{};  // by job type
  std::uint64_t open_total = 0;            // open windows counted
  std::map<std::string, std::uint64_t> open_by_type{};
  std::vector<WindowRow> windows{};  // the longest open first, at most `limit`
};

// Reads the retry windows `keys` (full keys under `prefix` =
// client.key("retry:window:")) in one pipeline; keys gone since SCAN are left
// out, a damaged window is a row with its error.
[[nodiscard]] std::vector<WindowRow> read_windows(redis::Client& client,
                                                  const std::vector<std::string>& keys,
                                                  std::string_view prefix);

// The fleet histogram of `job_type`; a damaged one is a row with its error.
// Throws what the client throws when Redis cannot be reached.
[[nodiscard]] HistogramRow read_histogram(retry::FleetHistogram& histogram,
                                          const std::string& job_type);

// Longest open first (those are the jobs stuck retrying), then by job id.
[[nodiscard]] bool longest_first(const WindowRow& a, const WindowRow& b);

// Reads the histograms (of `job_type`, or of every job type found with SCAN
// when empty) and walks the open windows with SCAN, keeping the `limit`
// longest open. Throws what the client throws when Redis cannot be reached;
// a damaged histogram or window is a row with its error.
[[nodiscard]] RetryStats read_retry_stats(const std::shared_ptr<redis::Client>& client,
                                          const std::string& job_type, std::size_t limit);

// `retry stats --json`'s fields: buckets, histograms, open_windows.
void add_retry_stats_json(const RetryStats& stats, nlohmann::json& out);

}  // namespace prodsafe::cli
