// What the Registry checks before it makes a family (registry.cpp): a
// registration whose exposition would not parse, or would collide with a
// family already registered, throws InvalidArgument naming the metric, what
// it clashes with and what to do. One bad family makes Prometheus refuse the
// whole scrape, so every family of the page would go dark.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "prodsafe/metrics/names.hpp"

namespace prodsafe::metrics::registration {

// What a family is (or is asked to be) registered with.
struct FamilySpec {
  MetricType type;
  const std::string& help;  // after sanitize_utf8
  const std::vector<std::string>& label_names;
  const std::vector<double>& bounds;  // histograms only
};

[[nodiscard]] std::string_view type_name(MetricType type) noexcept;

// Throws unless `wanted` asks for the family registered as `name` again.
void check_same_family(std::string_view name, const FamilySpec& registered,
                       const FamilySpec& wanted);

// Throws for a label name that is invalid, reserved for `type`, or given twice.
void check_label_names(MetricType type, std::string_view name,
                       const std::vector<std::string>& label_names);

// Throws unless the histogram's bounds are finite and strictly increasing.
void check_bounds(std::string_view name, const std::vector<double>& bounds);

// Throws: `name` would write, or be read as, `page_name`, which the family
// `owner` already takes.
[[noreturn]] void refuse_collision(MetricType type, std::string_view name, MetricType owner_type,
                                   std::string_view owner, std::string_view page_name);

}  // namespace prodsafe::metrics::registration
