#include "chaos/history/invariant.hpp"

#include <algorithm>
#include <string_view>

#include <fmt/format.h>

namespace prodsafe::chaos {

Invariant held_unless(std::string name, std::span<const std::string> violations,
                      std::size_t shown) {
  return Invariant{.name = std::move(name),
                   .held = violations.empty(),
                   .count = violations.size(),
                   .detail = first_few(violations, shown)};
}

Invariant held_unless(std::string name, std::size_t violations, std::string detail) {
  return Invariant{.name = std::move(name),
                   .held = violations == 0,
                   .count = violations,
                   .detail = violations == 0 ? std::string() : std::move(detail)};
}

std::string first_few(std::span<const std::string> items, std::size_t shown) {
  std::string text;
  for (std::size_t i = 0; i < items.size() && i < shown; ++i) {
    if (i > 0) text += ", ";
    text += items[i];
  }
  if (items.size() > shown) text += fmt::format(" and {} more", items.size() - shown);
  return text;
}

std::string invariant_table(std::span<const Invariant> invariants,
                            std::span<const Measurement> measurements) {
  std::size_t name_width = std::string_view("INVARIANT").size();
  std::size_t count_width = std::string_view("COUNT").size();
  for (const Invariant& row : invariants) {
    name_width = std::max(name_width, row.name.size());
    count_width = std::max(count_width, std::to_string(row.count).size());
  }
  for (const Measurement& row : measurements) {
    name_width = std::max(name_width, row.name.size());
    count_width = std::max(count_width, std::to_string(row.count).size());
  }
  std::string text;
  const auto line = [&](std::string_view row_name, std::string_view row_status,
                        std::string_view count, std::string_view detail) {
    std::string row = fmt::format("{:<{}}  {:<8}  {:>{}}  {}", row_name, name_width, row_status,
                                  count, count_width, detail);
    row.erase(row.find_last_not_of(' ') + 1);
    text += row;
    text += '\n';
  };
  line("INVARIANT", "STATUS", "COUNT", "DETAIL");
  std::size_t measured = 0;
  const auto measurements_up_to = [&](std::size_t position) {
    for (; measured < measurements.size() && measurements[measured].position <= position;
         ++measured) {
      const Measurement& row = measurements[measured];
      line(row.name, "measured", std::to_string(row.count), row.detail);
    }
  };
  for (std::size_t i = 0; i < invariants.size(); ++i) {
    measurements_up_to(i);
    const Invariant& row = invariants[i];
    line(row.name, row.held ? "held" : "VIOLATED", std::to_string(row.count), row.detail);
  }
  measurements_up_to(invariants.size());
  return text;
}

}  // namespace prodsafe::chaos
