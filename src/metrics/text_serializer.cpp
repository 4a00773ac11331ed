#include "prodsafe/metrics/text_serializer.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>

#include <fmt/format.h>

#include "registration_checks.hpp"

namespace prodsafe::metrics {
namespace {

std::string number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

std::string label_text(const std::vector<std::string>& names,
                       const std::vector<std::string>& values, std::string_view extra_name = {},
                       std::string_view extra_value = {}) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += fmt::format("{}=\"{}\"", names[i], escape_label_value(values[i]));
  }
  if (!extra_name.empty()) {
    out += out.empty() ? "{" : ",";
    out += fmt::format("{}=\"{}\"", extra_name, extra_value);
  }
  if (!out.empty()) out += "}";
  return out;
}

void write_histogram(std::string& out, const MetricFamily& family, const Sample& sample) {
  const HistogramSample& histogram = sample.histogram;
  const std::string& name = family.name;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < histogram.bounds.size(); ++i) {
    cumulative += histogram.counts[i];
    out += fmt::format(
        "{}_bucket{} {}\n", name,
        label_text(family.label_names, sample.label_values, "le", number(histogram.bounds[i])),
        cumulative);
  }
  out += fmt::format("{}_bucket{} {}\n", name,
                     label_text(family.label_names, sample.label_values, "le", "+Inf"),
                     histogram.count);
  const std::string labels = label_text(family.label_names, sample.label_values);
  out += fmt::format("{}_sum{} {}\n", name, labels, number(histogram.sum));
  out += fmt::format("{}_count{} {}\n", name, labels, histogram.count);
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string to_prometheus_text(const std::vector<MetricFamily>& families) {
  std::string out;
  for (const MetricFamily& family : families) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family.name, escape_help(family.help),
                       family.name, registration::type_name(family.type));
    for (const Sample& sample : family.samples) {
      if (family.type == MetricType::kHistogram) {
        write_histogram(out, family, sample);
      } else {
        out +=
            fmt::format("{}{} {}\n", family.name,
                        label_text(family.label_names, sample.label_values), number(sample.value));
      }
    }
  }
  return out;
}

}  // namespace prodsafe::metrics
