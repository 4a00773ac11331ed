#include "prodsafe/metrics/names.hpp"

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

}  // namespace prodsafe::metrics
