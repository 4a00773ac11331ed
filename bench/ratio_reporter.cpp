#include "ratio_reporter.hpp"

#include <fmt/format.h>

namespace prodsafe::bench {

void RatioReporter::ReportRuns(const std::vector<Run>& runs) {
  for (const Run& run : runs) {
    // The median of repetitions; a benchmark run once (Repetitions(1)) is its
    // own median.
    const bool median =
        run.run_type == Run::RT_Aggregate ? run.aggregate_name == "median" : run.repetitions <= 1;
    if (!median) continue;
    const std::string& name = run.run_name.function_name;
    medians_[name] =
        run.GetAdjustedRealTime() * 1e9 / benchmark::GetTimeUnitMultiplier(run.time_unit);
    for (const auto& [counter, value] : run.counters) counters_[name][counter] = value.value;
  }
  ConsoleReporter::ReportRuns(runs);
}

double RatioReporter::median_ns(const std::string& name) const {
  const auto found = medians_.find(name);
  return found == medians_.end() ? 0.0 : found->second;
}

double RatioReporter::median_counter(const std::string& name, const std::string& counter) const {
  const auto found = counters_.find(name);
  if (found == counters_.end()) return 0.0;
  const auto value = found->second.find(counter);
  return value == found->second.end() ? 0.0 : value->second;
}

void RatioReporter::print_paired_ratio(const std::string& label, const std::string& name,
                                       double target) const {
  const double ratio = median_counter(name, "ratio");
  if (ratio <= 0) {
    fmt::print("{}: not measured (filtered out?)\n", label);
    return;
  }
  fmt::print("{}: {:.0f} ns / RTT {:.0f} ns = {:.2f} (target <= {:.2f}: {})\n", label,
             median_counter(name, "op_ns"), median_counter(name, "rtt_ns"), ratio, target,
             ratio <= target ? "met" : "MISSED");
}

void RatioReporter::print_absolute(const std::string& label, const std::string& name,
                                   double target_ns) const {
  const double value = median_ns(name);
  if (value <= 0) {
    fmt::print("{}: not measured (filtered out?)\n", label);
    return;
  }
  fmt::print("{}: {:.0f} ns (target <= {:.0f} ns: {})\n", label, value, target_ns,
             value <= target_ns ? "met" : "MISSED");
}

}  // namespace prodsafe::bench
