// `prodsafe retry stats [JOB_TYPE]`: the fleet's attempt histograms
// (FleetHistogram, retry:histogram:<job_type>) and the open retry windows
// (RedisRetryWindowStore, retry:window:<job_id>).
#include <vector>

#include <fmt/format.h>

#include "ops_commands.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "retry_stats.hpp"

namespace prodsafe::cli {
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
    const RetryStats stats = read_retry_stats(client, arguments.job_type, arguments.limit);
    const auto& histograms = stats.histograms;
    const auto& windows = stats.windows;
    const std::uint64_t open_total = stats.open_total;

    if (ops.json) {
      nlohmann::json out = ops_json(url, kExitOk);
      add_retry_stats_json(stats, out);
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
