// What worker_storm compares when it checks a run (worker_storm.cpp): the
// fleet's metrics against its alerts, and what the alerts say about one
// breaker. The fleet itself is in fleet.hpp.
//
// Thread safety: pure functions over values.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chaos/scenarios/worker_storm/fleet.hpp"

namespace prodsafe::chaos::storm {

// The value of one series (0 when absent).
[[nodiscard]] double series_value(const CounterSeries& series,
                                  const std::vector<std::string>& labels);
// Appends to `out` a line per series where `metric`'s `counted` differs from
// `expected`. Zero-valued series exist from construction: only series either
// side counted are compared.
void compare_series(const std::string& metric, CounterSeries counted, const CounterSeries& expected,
                    std::vector<std::string>& out);
// ASCII lower case ("HALF_OPEN" -> "half_open", as the metrics label states).
[[nodiscard]] std::string lower(std::string_view text);

// A breaker transition alert (OPEN, HALF_OPEN or CLOSED).
[[nodiscard]] bool is_transition(const AlertRecord& alert);

// What the alerts say about one breaker.
struct BreakerStory {
  std::optional<AlertRecord> first_open{};  // the first CLOSED -> OPEN
  std::optional<std::int64_t> last_closed_ns{};
};
[[nodiscard]] BreakerStory story_of(std::span<const AlertRecord> alerts, std::string_view type);

}  // namespace prodsafe::chaos::storm
