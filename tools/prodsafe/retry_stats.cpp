#include "retry_stats.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include <fmt/format.h>

#include "ops_common.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/retry/fleet_histogram.hpp"

namespace prodsafe::cli {
namespace {

using std::chrono::milliseconds;

constexpr std::size_t kScanCount = 500;

std::int64_t to_int(const std::optional<std::string>& text, bool& ok) {
  std::int64_t value = 0;
  if (!text) {
    ok = false;
    return 0;
  }
  const auto [stop, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc() || stop != text->data() + text->size()) ok = false;
  return value;
}

}  // namespace

std::vector<WindowRow> read_windows(redis::Client& client, const std::vector<std::string>& keys,
                                    std::string_view prefix) {
  std::vector<WindowRow> rows;
  if (keys.empty()) return rows;
  redis::Pipeline pipeline;
  for (const std::string& key : keys) {
    pipeline.add({"HMGET", key, "job_type", "first", "last", "attempts"}).add({"PTTL", key});
  }
  pipeline.add({"TIME"});
  const auto replies = client.pipeline(pipeline);
  if (replies.size() != keys.size() * 2 + 1) throw ProtocolError("short pipeline reply");
  const auto& time = replies.back().check("TIME").array();
  if (time.size() != 2) throw ProtocolError("TIME answered " + replies.back().debug_string());
  const std::int64_t now = std::stoll(time[0].str()) * 1000 + std::stoll(time[1].str()) / 1000;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    WindowRow row{.job_id = keys[i].substr(prefix.size())};
    const redis::Reply& fields = replies[2 * i];
    const redis::Reply& ttl = replies[2 * i + 1];
    if (fields.is_error()) {
      row.error =
          fmt::format("retry window '{}' is not a hash: {}", keys[i], fields.error_message());
      rows.push_back(std::move(row));
      continue;
    }
    const auto& values = fields.array();
    if (values.size() == 4 && !values[0].optional_str() && !values[1].optional_str() &&
        !values[3].optional_str() && !ttl.is_error() && ttl.integer() == -2) {
      continue;  // gone since SCAN
    }
    bool ok = values.size() == 4 && values[0].optional_str().has_value();
    const std::int64_t first = ok ? to_int(values[1].optional_str(), ok) : 0;
    const std::int64_t last = ok ? to_int(values[2].optional_str(), ok) : 0;
    const std::int64_t attempts = ok ? to_int(values[3].optional_str(), ok) : 0;
    if (!ok) {
      row.error = fmt::format(
          "retry window '{}' has no valid job_type, first, last and attempts fields", keys[i]);
      rows.push_back(std::move(row));
      continue;
    }
    row.job_type = *values[0].optional_str();
    row.attempts = static_cast<int>(attempts);
    row.open_for = milliseconds(std::max<std::int64_t>(0, now - first));
    row.since_last = milliseconds(std::max<std::int64_t>(0, now - last));
    if (!ttl.is_error() && ttl.integer() >= 0) row.expires_in = milliseconds(ttl.integer());
    rows.push_back(std::move(row));
  }
  return rows;
}

HistogramRow read_histogram(retry::FleetHistogram& histogram, const std::string& job_type) {
  HistogramRow row{.job_type = job_type};
  try {
    row.counts = histogram.snapshot(job_type).counts();
  } catch (const DecodeError& error) {
    row.error = error.what();
  }
  return row;
}

bool longest_first(const WindowRow& a, const WindowRow& b) {
  return a.open_for != b.open_for ? a.open_for > b.open_for : a.job_id < b.job_id;
}

RetryStats read_retry_stats(const std::shared_ptr<redis::Client>& client,
                            const std::string& job_type, std::size_t limit) {
  retry::FleetHistogram histogram(client);

  // The job types with a histogram: the one asked for, or all (SCAN).
  std::vector<std::string> job_types;
  if (!job_type.empty()) {
    job_types.push_back(job_type);
  } else {
    const std::string prefix = client->key("retry:histogram:");
    std::set<std::string> found;
    scan_keys(*client, glob_escape(prefix) + "*", kScanCount, [&](const auto& keys) {
      for (const std::string& key : keys) found.insert(key.substr(prefix.size()));
      return true;
    });
    job_types.assign(found.begin(), found.end());
  }
  RetryStats stats;
  for (const std::string& type : job_types)
    stats.histograms.push_back(read_histogram(histogram, type));

  // Open windows (of the job type asked for, if any).
  const std::string window_prefix = client->key("retry:window:");
  std::vector<WindowRow>& windows = stats.windows;
  std::set<std::string> seen;
  scan_keys(*client, glob_escape(window_prefix) + "*", kScanCount,
            [&](const std::vector<std::string>& keys) {
              std::vector<std::string> fresh;
              for (const std::string& key : keys) {
                if (seen.insert(key).second) fresh.push_back(key);
              }
              for (WindowRow& row : read_windows(*client, fresh, window_prefix)) {
                if (!job_type.empty() && row.error.empty() && row.job_type != job_type) {
                  continue;
                }
                ++stats.open_total;
                if (row.error.empty()) ++stats.open_by_type[row.job_type];
                windows.push_back(std::move(row));
              }
              // Keep only the longest open (memory bounded by --limit).
              if (windows.size() > 2 * limit) {
                std::partial_sort(windows.begin(),
                                  windows.begin() + static_cast<std::ptrdiff_t>(limit),
                                  windows.end(), longest_first);
                windows.resize(limit);
              }
              return true;
            });
  std::sort(windows.begin(), windows.end(), longest_first);
  if (windows.size() > limit) windows.resize(limit);
  return stats;
}

void add_retry_stats_json(const RetryStats& stats, nlohmann::json& out) {
  out["buckets"] = nlohmann::json::array();
  for (std::size_t i = 0; i < retry::kHistogramBuckets; ++i) {
    out["buckets"].push_back(retry::RetryHistogram::bucket_label(i));
  }
  out["histograms"] = nlohmann::json::array();
  for (const HistogramRow& row : stats.histograms) {
    nlohmann::json item = {{"job_type", json_bytes(row.job_type)}};
    if (row.counts) {
      std::uint64_t total = 0;
      item["counts"] = nlohmann::json::object();
      for (std::size_t i = 0; i < retry::kHistogramBuckets; ++i) {
        item["counts"][std::string(retry::RetryHistogram::bucket_label(i))] = (*row.counts)[i];
        total += (*row.counts)[i];
      }
      item["total"] = total;
    } else {
      item["error"] = json_bytes(row.error);
    }
    out["histograms"].push_back(item);
  }
  // Job types are what the window hashes hold: bytes, not necessarily UTF-8.
  nlohmann::json by_job_type = nlohmann::json::object();
  for (const auto& [job_type, count] : stats.open_by_type) {
    nlohmann::json& slot = by_job_type[json_bytes(job_type).get<std::string>()];
    slot = slot.is_null() ? count : slot.get<std::uint64_t>() + count;
  }
  out["open_windows"] = {{"total", stats.open_total},
                         {"by_job_type", std::move(by_job_type)},
                         {"shown", stats.windows.size()},
                         {"windows", nlohmann::json::array()}};
  for (const WindowRow& row : stats.windows) {
    nlohmann::json item = {{"job_id", json_bytes(row.job_id)}};
    if (!row.error.empty()) {
      item["error"] = json_bytes(row.error);
    } else {
      item["job_type"] = json_bytes(row.job_type);
      item["attempts"] = row.attempts;
      item["open_for_ms"] = row.open_for.count();
      item["since_last_attempt_ms"] = row.since_last.count();
      item["expires_in_ms"] =
          row.expires_in.count() >= 0 ? nlohmann::json(row.expires_in.count()) : nullptr;
    }
    out["open_windows"]["windows"].push_back(item);
  }
}

}  // namespace prodsafe::cli
