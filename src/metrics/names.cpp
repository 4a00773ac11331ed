#include "prodsafe/metrics/names.hpp"

#include <cstddef>

namespace prodsafe::metrics {
namespace {

bool letter_or_underscore(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

bool is_valid_metric_name(std::string_view name) noexcept {
  if (name.empty() || !(letter_or_underscore(name[0]) || name[0] == ':')) return false;
  for (char c : name) {
    if (!(letter_or_underscore(c) || digit(c) || c == ':')) return false;
  }
  return true;
}

bool is_valid_label_name(std::string_view name) noexcept {
  if (name.empty() || !letter_or_underscore(name[0]) || name.starts_with("__")) return false;
  for (char c : name) {
    if (!(letter_or_underscore(c) || digit(c))) return false;
  }
  return true;
}

std::vector<std::string> exposition_names(MetricType type, std::string_view name) {
  static constexpr std::string_view kTotal = "_total";
  std::vector<std::string> names{std::string(name)};
  switch (type) {
    case MetricType::kCounter:
      if (name.ends_with(kTotal)) {
        names.emplace_back(name.substr(0, name.size() - kTotal.size()));
      } else {
        names.push_back(std::string(name) + std::string(kTotal));
      }
      break;
    case MetricType::kGauge:
      break;
    case MetricType::kHistogram:
      for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
        names.push_back(std::string(name) + std::string(suffix));
      }
      break;
  }
  return names;
}

bool is_reserved_label_name(MetricType type, std::string_view label) noexcept {
  return label == "quantile" || (type == MetricType::kHistogram && label == "le");
}

std::string sanitize_utf8(std::string_view value) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(value.size());
  std::size_t i = 0;
  while (i < value.size()) {
    const auto lead = static_cast<unsigned char>(value[i]);
    if (lead < 0x80) {
      out += value[i++];
      continue;
    }
    // Continuation bytes after `lead`, and the range of the first of them
    // (which rules out overlong forms, surrogates and code points past U+10FFFF).
    std::size_t follow = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      follow = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      follow = 2;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      follow = 3;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    }
    std::size_t end = i + 1;
    for (std::size_t k = 0; k < follow && end < value.size(); ++k, ++end) {
      const auto byte = static_cast<unsigned char>(value[end]);
      if (byte < (k == 0 ? low : 0x80) || byte > (k == 0 ? high : 0xBF)) break;
    }
    if (follow > 0 && end == i + 1 + follow) {
      out.append(value.substr(i, end - i));
    } else {
      out += kReplacement;  // one per maximal ill-formed subpart
    }
    i = end;
  }
  return out;
}

}  // namespace prodsafe::metrics
