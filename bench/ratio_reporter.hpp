// A console reporter that also keeps each benchmark's medians (time and
// counters), so a benchmark binary can print its targets as ratios taken in
// the same run.
// A benchmark registered with Repetitions(1) (or none) counts as its own
// median.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace prodsafe::bench {

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override;

  // Median real time per iteration in nanoseconds, by benchmark function name;
  // 0 when it did not run.
  [[nodiscard]] double median_ns(const std::string& name) const;
  // Median of a user counter; 0 when absent.
  [[nodiscard]] double median_counter(const std::string& name, const std::string& counter) const;

  // For a benchmark built on paired_with_rtt(): "label: op_ns / rtt_ns = ratio
  // (target <= target: met|MISSED)".
  void print_paired_ratio(const std::string& label, const std::string& name, double target) const;
  // "label: name = X ns (target <= target_ns ns: met|MISSED)".
  void print_absolute(const std::string& label, const std::string& name, double target_ns) const;

 private:
  std::map<std::string, double> medians_;
  std::map<std::string, std::map<std::string, double>> counters_;
};

}  // namespace prodsafe::bench
