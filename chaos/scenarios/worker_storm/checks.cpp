#include "chaos/scenarios/worker_storm/checks.hpp"

#include <cctype>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "prodsafe/alerts/alert_hooks.hpp"

namespace prodsafe::chaos::storm {

double series_value(const CounterSeries& series, const std::vector<std::string>& labels) {
  const auto it = series.find(labels);
  return it == series.end() ? 0.0 : it->second;
}

void compare_series(const std::string& metric, CounterSeries counted, const CounterSeries& expected,
                    std::vector<std::string>& out) {
  for (const auto& [labels, value] : expected) counted.try_emplace(labels, 0.0);
  for (const auto& [labels, value] : counted) {
    const double want = series_value(expected, labels);
    if (value != want)
      out.push_back(
          fmt::format("{}{{{}}} = {}, alerts {}", metric, fmt::join(labels, ","), value, want));
  }
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_transition(const AlertRecord& alert) {
  return alert.event == alerts::kCircuitOpened || alert.event == alerts::kCircuitHalfOpen ||
         alert.event == alerts::kCircuitClosed;
}

BreakerStory story_of(std::span<const AlertRecord> alerts, std::string_view type) {
  BreakerStory story;
  for (const AlertRecord& alert : alerts) {
    if (alert.job_type != type || !is_transition(alert)) continue;
    if (alert.state == "OPEN" && alert.previous == "CLOSED" && !story.first_open)
      story.first_open = alert;
    if (alert.state == "CLOSED") story.last_closed_ns = alert.at_ns;
  }
  return story;
}

}  // namespace prodsafe::chaos::storm
