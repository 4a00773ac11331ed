// A console reporter that also keeps each benchmark's median time, so a
// benchmark binary can print ratios between results taken in the same run.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace prodsafe::bench {

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override;

  // Median real time per iteration in nanoseconds, by benchmark family name
  // (without the "/repeats:N_median" suffix); 0 when the benchmark did not run.
  [[nodiscard]] double median_ns(const std::string& name) const;

  // Prints "label: numerator / denominator = ratio (target <= target)".
  void print_ratio(const std::string& label, const std::string& numerator,
                   const std::string& denominator, double target) const;
  // Prints "label: name = X ns (target <= target_ns ns)".
  void print_absolute(const std::string& label, const std::string& name, double target_ns) const;

 private:
  std::map<std::string, double> medians_;
};

}  // namespace prodsafe::bench
