// `prodsafe retry stats [JOB_TYPE]`: the fleet's attempt histograms
// (FleetHistogram, retry:histogram:<job_type>) and the open retry windows
// (RedisRetryWindowStore, retry:window:<job_id>).
#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "ops_commands.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/retry/fleet_histogram.hpp"

namespace prodsafe::cli {
namespace {

using std::chrono::milliseconds;

constexpr std::size_t kScanCount = 500;

struct HistogramRow {
  std::string job_type{};
  std::optional<retry::RetryHistogram::Counts> counts{};  // nullopt: damaged
  std::string error{};
};

struct WindowRow {
  std::string job_id{};
  std::string job_type{};
  int attempts = 0;
  milliseconds open_for{0};     // since the first attempt
  milliseconds since_last{0};   // since the last attempt
  milliseconds expires_in{-1};  // -1: no expiry
  std::string error{};          // damaged: why
};

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

}  // namespace

int run_retry_stats(const RetryArguments& arguments) {
  const OpsArguments& ops = arguments.ops;
  const std::string url = redis::redact_url(ops.url);
  const FailureOutput output = ops_failure_output("retry", ops.json, url);
  for (char c : arguments.job_type) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return report(output, usage_failure("the job type contains a control character"));
    }
  }
  logger()->set_level(spdlog::level::off);
  try {
    auto client = ops_client(ops);
    retry::FleetHistogram histogram(client);

    // The job types with a histogram: the one asked for, or all (SCAN).
    std::vector<std::string> job_types;
    if (!arguments.job_type.empty()) {
      job_types.push_back(arguments.job_type);
    } else {
      const std::string prefix = client->key("retry:histogram:");
      std::set<std::string> found;
      scan_keys(*client, glob_escape(prefix) + "*", kScanCount, [&](const auto& keys) {
        for (const std::string& key : keys) found.insert(key.substr(prefix.size()));
        return true;
      });
      job_types.assign(found.begin(), found.end());
    }
    std::vector<HistogramRow> histograms;
    for (const std::string& job_type : job_types) {
      HistogramRow row{.job_type = job_type};
      try {
        row.counts = histogram.snapshot(job_type).counts();
      } catch (const DecodeError& error) {
        row.error = error.what();
      }
      histograms.push_back(std::move(row));
    }

    // Open windows (of the job type asked for, if any).
    const std::string window_prefix = client->key("retry:window:");
    std::vector<WindowRow> windows;
    std::map<std::string, std::uint64_t> open_by_type;
    std::uint64_t open_total = 0;
    std::set<std::string> seen;
    // Longest open first: those are the jobs stuck retrying.
    const auto longest_first = [](const WindowRow& a, const WindowRow& b) {
      return a.open_for != b.open_for ? a.open_for > b.open_for : a.job_id < b.job_id;
    };
    scan_keys(*client, glob_escape(window_prefix) + "*", kScanCount,
              [&](const std::vector<std::string>& keys) {
                std::vector<std::string> fresh;
                for (const std::string& key : keys) {
                  if (seen.insert(key).second) fresh.push_back(key);
                }
                for (WindowRow& row : read_windows(*client, fresh, window_prefix)) {
                  if (!arguments.job_type.empty() && row.error.empty() &&
                      row.job_type != arguments.job_type) {
                    continue;
                  }
                  ++open_total;
                  if (row.error.empty()) ++open_by_type[row.job_type];
                  windows.push_back(std::move(row));
                }
                // Keep only the longest open (memory bounded by --limit).
                if (windows.size() > 2 * arguments.limit) {
                  std::partial_sort(windows.begin(),
                                    windows.begin() + static_cast<std::ptrdiff_t>(arguments.limit),
                                    windows.end(), longest_first);
                  windows.resize(arguments.limit);
                }
                return true;
              });
    std::sort(windows.begin(), windows.end(), longest_first);
    if (windows.size() > arguments.limit) windows.resize(arguments.limit);

    if (ops.json) {
      nlohmann::json out = ops_json(url, kExitOk);
      out["buckets"] = nlohmann::json::array();
      for (std::size_t i = 0; i < retry::kHistogramBuckets; ++i) {
        out["buckets"].push_back(retry::RetryHistogram::bucket_label(i));
      }
      out["histograms"] = nlohmann::json::array();
      for (const HistogramRow& row : histograms) {
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
      out["open_windows"] = {{"total", open_total},
                             {"by_job_type", open_by_type},
                             {"shown", windows.size()},
                             {"windows", nlohmann::json::array()}};
      for (const WindowRow& row : windows) {
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
      print_json(out);
      return kExitOk;
    }

    std::vector<std::string> header = {"JOB TYPE"};
    for (std::size_t i = 0; i < retry::kHistogramBuckets; ++i) {
      header.emplace_back(retry::RetryHistogram::bucket_label(i));
    }
    header.emplace_back("TOTAL");
    header.emplace_back("RETRIED");
    Table table(header);
    for (const HistogramRow& row : histograms) {
      std::vector<std::string> cells = {printable(row.job_type, 40)};
      if (!row.counts) {
        cells.push_back("damaged: " + row.error);
        table.add(cells);
        continue;
      }
      std::uint64_t total = 0;
      for (std::uint64_t n : *row.counts) {
        cells.push_back(std::to_string(n));
        total += n;
      }
      cells.push_back(std::to_string(total));
      const std::uint64_t retried = total - (*row.counts)[0];
      cells.push_back(total == 0 ? "-"
                                 : fmt::format("{:.1f}%", 100.0 * static_cast<double>(retried) /
                                                              static_cast<double>(total)));
      table.add(cells);
    }
    fmt::print("Attempts per job (fleet histograms) in {}:\n\n", url);
    fmt::print("{}", table.empty() ? "  none recorded\n" : table.str());
    fmt::print("\nOpen retry windows: {}\n", open_total);
    if (!windows.empty()) {
      Table open({"JOB ID", "JOB TYPE", "ATTEMPTS", "OPEN FOR", "LAST ATTEMPT", "EXPIRES IN"});
      for (const WindowRow& row : windows) {
        if (!row.error.empty()) {
          open.add({printable(row.job_id, 40), "damaged", "", "", "", row.error});
          continue;
        }
        open.add({printable(row.job_id, 40), printable(row.job_type, 30),
                  std::to_string(row.attempts), format_duration(row.open_for),
                  format_duration(row.since_last) + " ago",
                  row.expires_in.count() >= 0 ? format_duration(row.expires_in) : "never"});
      }
      fmt::print("\n{}", open.str());
      if (open_total > windows.size()) {
        fmt::print("\n{} of {} shown, longest open first (--limit {}).\n", windows.size(),
                   open_total, arguments.limit);
      }
    }
    return kExitOk;
  } catch (const std::exception& error) {
    return report(output, failure_of(error));
  }
}

}  // namespace prodsafe::cli
