#include "registration_checks.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::metrics::registration {
namespace {

std::string bounds_text(const std::vector<double>& bounds) {
  std::string out;
  for (double bound : bounds) {
    if (!out.empty()) out += ", ";
    if (std::isnan(bound)) {
      out += "NaN";
    } else if (std::isinf(bound)) {
      out += bound > 0 ? "+Inf" : "-Inf";
    } else {
      out += fmt::format("{}", bound);
    }
  }
  return "{" + out + "}";
}

}  // namespace

std::string_view type_name(MetricType type) noexcept {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "metric";
}

void check_same_family(std::string_view name, const FamilySpec& registered,
                       const FamilySpec& wanted) {
  std::string difference;
  if (registered.type != wanted.type) {
    difference =
        fmt::format("as a {}, not a {}", type_name(registered.type), type_name(wanted.type));
  } else if (registered.help != wanted.help) {
    difference = fmt::format("with other help (\"{}\")", registered.help);
  } else if (registered.label_names != wanted.label_names) {
    difference =
        fmt::format("with other label names ({{{}}})", fmt::join(registered.label_names, ", "));
  } else if (wanted.type == MetricType::kHistogram && registered.bounds != wanted.bounds) {
    difference = fmt::format("with other buckets ({})", bounds_text(registered.bounds));
  } else {
    return;
  }
  throw InvalidArgument(fmt::format(
      "metric {} is already registered {}; a page cannot hold both. Ask for it with the same "
      "type, help, label names and buckets to share the family, or register another name",
      name, difference));
}

void check_label_names(MetricType type, std::string_view name,
                       const std::vector<std::string>& label_names) {
  for (auto label = label_names.begin(); label != label_names.end(); ++label) {
    if (!is_valid_label_name(*label)) {
      throw InvalidArgument(fmt::format(
          "label name '{}' on {} is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, "
          "not starting with __), so no page with it would parse; rename it",
          *label, name));
    }
    if (is_reserved_label_name(type, *label)) {
      throw InvalidArgument(fmt::format(
          "label name '{}' on {} {} is reserved ({}); rename it", *label, type_name(type), name,
          *label == "le" ? "a histogram writes le for its buckets' bounds"
                         : "summaries write quantile, and Prometheus client libraries refuse it"));
    }
    if (std::find(label_names.begin(), label, *label) != label) {
      throw InvalidArgument(
          fmt::format("label '{}' twice on {}: a series cannot have two values for it; drop one",
                      *label, name));
    }
  }
}

void check_bounds(std::string_view name, const std::vector<double>& bounds) {
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i - 1] < bounds[i]))) {
      throw InvalidArgument(fmt::format(
          "histogram {} has the bucket bounds {}; give finite, strictly increasing bounds (+Inf "
          "is implied and written by the registry)",
          name, bounds_text(bounds)));
    }
  }
}

void refuse_collision(MetricType type, std::string_view name, MetricType owner_type,
                      std::string_view owner, std::string_view page_name) {
  throw InvalidArgument(fmt::format(
      "{} {} would collide with the {} {} on the /metrics page: both would write, or be read as, "
      "{} (Prometheus would then refuse the whole scrape); register it under another name",
      type_name(type), name, type_name(owner_type), owner, page_name));
}

}  // namespace prodsafe::metrics::registration
