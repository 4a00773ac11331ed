#include "ratio_reporter.hpp"

#include <fmt/format.h>

namespace prodsafe::bench {

void RatioReporter::ReportRuns(const std::vector<Run>& runs) {
  for (const Run& run : runs) {
    if (run.run_type != Run::RT_Aggregate || run.aggregate_name != "median") continue;
    medians_[run.run_name.function_name] =
        run.GetAdjustedRealTime() * 1e9 / benchmark::GetTimeUnitMultiplier(run.time_unit);
  }
  ConsoleReporter::ReportRuns(runs);
}

double RatioReporter::median_ns(const std::string& name) const {
  const auto found = medians_.find(name);
  return found == medians_.end() ? 0.0 : found->second;
}

void RatioReporter::print_ratio(const std::string& label, const std::string& numerator,
                                const std::string& denominator, double target) const {
  const double top = median_ns(numerator);
  const double bottom = median_ns(denominator);
  if (top <= 0 || bottom <= 0) {
    fmt::print("{}: not measured (filtered out?)\n", label);
    return;
  }
  const double ratio = top / bottom;
  fmt::print("{}: {} / {} = {:.0f} ns / {:.0f} ns = {:.3f} (target <= {:.2f}: {})\n", label,
             numerator, denominator, top, bottom, ratio, target,
             ratio <= target ? "met" : "MISSED");
}

void RatioReporter::print_absolute(const std::string& label, const std::string& name,
                                   double target_ns) const {
  const double value = median_ns(name);
  if (value <= 0) {
    fmt::print("{}: not measured (filtered out?)\n", label);
    return;
  }
  fmt::print("{}: {} = {:.0f} ns (target <= {:.0f} ns: {})\n", label, name, value, target_ns,
             value <= target_ns ? "met" : "MISSED");
}

}  // namespace prodsafe::bench
