#include "prodsafe/metrics/cardinality_guard.hpp"

#include <array>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/metrics/names.hpp"

namespace prodsafe::metrics {
namespace {

constexpr std::array<std::string_view, 14> kForbidden = {
    "job_id",          "order_id",   "trade_id",       "user_id",  "transaction_id",
    "request_id",      "session_id", "correlation_id", "trace_id", "span_id",
    "client_order_id", "account_id", "email",          "ip"};

bool hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool digit(char c) { return c >= '0' && c <= '9'; }

bool is_uuid(std::string_view v) {
  if (v.size() != 36) return false;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? v[i] != '-' : !hex(v[i])) return false;
  }
  return true;
}

bool has_iso_timestamp(std::string_view v) {
  // dddd-dd-ddTdd:dd anywhere in the value
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd";
  if (v.size() < kShape.size()) return false;
  for (std::size_t start = 0; start + kShape.size() <= v.size(); ++start) {
    bool match = true;
    for (std::size_t i = 0; i < kShape.size() && match; ++i) {
      const char want = kShape[i];
      const char got = v[start + i];
      match = want == 'd' ? digit(got) : (want == 'T' ? (got == 'T' || got == ' ') : got == want);
    }
    if (match) return true;
  }
  return false;
}

std::uint64_t hash_labels(std::span<const Label> labels) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  auto mix = [&h](std::string_view text) {
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
    h = (h ^ 0xFFu) * 1099511628211ULL;  // separator no byte of a name can fake
  };
  for (const auto& [name, value] : labels) {
    mix(name);
    mix(value);
  }
  return h;
}

}  // namespace

bool looks_unbounded(std::string_view value) noexcept {
  if (is_uuid(value) || has_iso_timestamp(value)) return true;
  std::size_t hex_run = 0;
  std::size_t digit_run = 0;
  for (char c : value) {
    hex_run = hex(c) ? hex_run + 1 : 0;
    digit_run = digit(c) ? digit_run + 1 : 0;
    if (hex_run >= 16 || digit_run >= 10) return true;
  }
  return false;
}

MetricsCardinalityGuard::MetricsCardinalityGuard(GuardOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock::instance()) {}

bool MetricsCardinalityGuard::is_forbidden_label(std::string_view name) const {
  if (options_.allowed_labels.contains(name)) return false;
  for (std::string_view forbidden : kForbidden) {
    if (name == forbidden) return true;
  }
  if (options_.extra_forbidden_labels.contains(name)) return true;
  return name.ends_with("_id") || name.ends_with("_uuid") || name.ends_with("_guid") ||
         name.find("timestamp") != std::string_view::npos;
}

ValidationResult MetricsCardinalityGuard::validate_labels(std::string_view metric,
                                                          std::span<const Label> labels) {
  const std::uint64_t hash = hash_labels(labels);
  // A label set seen before was counted (and logged) then: give the same
  // answer without counting it again.
  enum class Known { kNo, kAccepted, kNameErrors, kRefused };
  const auto known = [&] {
    const auto found = metrics_.find(metric);
    if (found == metrics_.end()) return Known::kNo;
    if (const auto set = found->second.seen.find(hash); set != found->second.seen.end()) {
      return set->second ? Known::kNameErrors : Known::kAccepted;
    }
    return found->second.refused.contains(hash) ? Known::kRefused : Known::kNo;
  };
  const auto again = [&](Known seen_as) -> ValidationResult {
    if (seen_as == Known::kAccepted) return {};
    ValidationResult result = check_names(metric, labels);
    if (seen_as == Known::kRefused) {
      add_limit_violation(metric, result);
      if (options_.strict_mode)
        throw CardinalityViolation(std::string(metric), limit_message(metric));
    }
    return result;
  };
  {
    std::shared_lock lock(mutex_);
    if (const Known seen_as = known(); seen_as != Known::kNo) return again(seen_as);
  }
  std::unique_lock lock(mutex_);
  if (const Known seen_as = known(); seen_as != Known::kNo) {
    lock.unlock();
    return again(seen_as);
  }
  MetricState* state = nullptr;
  bool untracked = false;  // a valid metric past max_metrics
  if (auto found = metrics_.find(metric); found != metrics_.end()) {
    state = &found->second;
  } else if (is_valid_metric_name(metric)) {
    if (metrics_.size() < options_.max_metrics) {
      state = &metrics_[std::string(metric)];
    } else {
      untracked = true;
    }
  }
  ValidationResult result = check_new(metric, labels, hash, state);
  if (untracked) {
    // Nothing is remembered for it, so nothing can limit it: refuse its label
    // sets (a Registry counts them in the overflow series).
    result.violations.push_back(
        {ViolationKind::kCardinalityLimit, true, "",
         fmt::format("{} metrics are tracked already (max_metrics); label sets of further "
                     "metrics such as {} are refused",
                     options_.max_metrics, metric)});
    result.is_valid = false;
  }
  report(metric, result, untracked ? &untracked_ : state);
  return result;
}

ValidationResult MetricsCardinalityGuard::validate_labels(
    std::string_view metric, const std::map<std::string, std::string>& labels) {
  std::vector<Label> view;
  view.reserve(labels.size());
  for (const auto& [name, value] : labels) view.emplace_back(name, value);
  return validate_labels(metric, std::span<const Label>(view));
}

ValidationResult MetricsCardinalityGuard::check_names(std::string_view metric,
                                                      std::span<const Label> labels) const {
  ValidationResult result;
  auto add = [&result](ViolationKind kind, bool error, std::string_view label,
                       std::string message) {
    result.violations.push_back({kind, error, std::string(label), std::move(message)});
    if (error) result.is_valid = false;
  };
  if (!is_valid_metric_name(metric)) {
    add(ViolationKind::kInvalidName, true, "",
        fmt::format("metric name '{}' is not a valid Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
                    metric));
  }
  for (const auto& [name, value] : labels) {
    if (!is_valid_label_name(name)) {
      add(ViolationKind::kInvalidName, true, name,
          fmt::format(
              "label name '{}' is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, "
              "not starting with __)",
              name));
    } else if (is_forbidden_label(name)) {
      add(ViolationKind::kForbiddenLabel, true, name,
          fmt::format("label '{}' on {} has one value per entity (an id, a timestamp) and would "
                      "create a series per value; drop it, or put it in logs or traces",
                      name, metric));
    }
    if (looks_unbounded(value)) {
      add(ViolationKind::kUnboundedValue, false, name,
          fmt::format("label '{}' on {} has the value '{}', which looks unbounded (a UUID, a long "
                      "number, a timestamp)",
                      name, metric, value));
    }
  }
  return result;
}

std::string MetricsCardinalityGuard::limit_message(std::string_view metric) const {
  return fmt::format(
      "{} already has {} label sets (the limit); further ones are refused (a Registry counts "
      "them in the metric's overflow series)",
      metric, options_.max_label_sets);
}

void MetricsCardinalityGuard::add_limit_violation(std::string_view metric,
                                                  ValidationResult& result) const {
  result.violations.push_back({ViolationKind::kCardinalityLimit, true, "", limit_message(metric)});
  result.is_valid = false;
}

ValidationResult MetricsCardinalityGuard::check_new(std::string_view metric,
                                                    std::span<const Label> labels,
                                                    std::uint64_t hash, MetricState* state) {
  ValidationResult result = check_names(metric, labels);
  // In strict mode a name error throws, so the set is never used; in warning
  // mode the caller goes on using it (a Registry makes its series), so it
  // counts against the limit like any other.
  if (state == nullptr || (!result.is_valid && options_.strict_mode)) return result;
  if (state->seen.size() >= options_.max_label_sets) {
    add_limit_violation(metric, result);
    // Remembered (up to max_label_sets of them) so that it is counted once.
    if (state->refused.size() < options_.max_label_sets) state->refused.insert(hash);
  } else {
    state->seen.emplace(hash, !result.is_valid);
  }
  return result;
}

void MetricsCardinalityGuard::report(std::string_view metric, const ValidationResult& result,
                                     MetricState* state) {
  if (result.violations.empty()) return;
  (result.is_valid ? warnings_ : errors_).fetch_add(1, std::memory_order_relaxed);
  if (!result.is_valid && options_.strict_mode) {
    for (const Violation& violation : result.violations) {
      if (violation.error) throw CardinalityViolation(std::string(metric), violation.message);
    }
  }
  const auto now = clock_.steady_now();
  if (state != nullptr) {
    if (state->logged && now - state->last_log < options_.log_interval) return;
    state->logged = true;
    state->last_log = now;
  }
  logger()->warn("metric {}: {}{}", metric, result.violations.front().message,
                 result.violations.size() > 1
                     ? fmt::format(" (and {} more)", result.violations.size() - 1)
                     : std::string());
}

std::size_t MetricsCardinalityGuard::label_sets(std::string_view metric) const {
  std::shared_lock lock(mutex_);
  const auto found = metrics_.find(metric);
  return found == metrics_.end() ? 0 : found->second.seen.size();
}

MetricsCardinalityGuard& global_guard() {
  static MetricsCardinalityGuard guard;
  return guard;
}

bool validate_metric_labels(std::string_view metric,
                            const std::map<std::string, std::string>& labels) {
  return global_guard().validate_labels(metric, labels).is_valid;
}

}  // namespace prodsafe::metrics
