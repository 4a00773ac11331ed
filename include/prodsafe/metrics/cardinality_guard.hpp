// Keeps metric labels from exploding a Prometheus (the seed's
// MetricsCardinalityGuard and validate_metric_labels).
//
//   MetricsCardinalityGuard guard;
//   auto [is_valid, violations] = guard.validate_labels(
//       "order_latency", {{"symbol", "BTCUSDT"}, {"side", "buy"}, {"status", "filled"}});
//
// Errors (is_valid == false): a forbidden label name (job_id, order_id, ...,
// or one matching *_id, *_uuid, *_guid, *timestamp*, unless allowlisted), a
// metric or label name the Prometheus data model refuses, or a new label set
// past the metric's limit (default 2,000, as OpenTelemetry). Warnings
// (is_valid stays true): label values that look unbounded (UUIDs, long hex or
// digit runs, timestamps). In strict mode an error throws
// CardinalityViolation; otherwise it is counted and logged, at most once a
// minute per metric. A label set is counted once, when first validated: asking
// again gives the same answer (and throws again in strict mode) without
// counting. (Refused sets are remembered up to max_label_sets per metric;
// past that, a refused set counts at each validation.) In warning mode a label set
// with a forbidden or invalid label name still takes one of the metric's
// max_label_sets (the caller goes on to use it).
//
// Memory is bounded: per metric, at most `max_label_sets` label-set hashes
// admitted and as many refused; at most `max_metrics` metrics are tracked,
// and every label set of a further metric is refused (kCardinalityLimit).
//
// Thread safety: safe for concurrent use.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "prodsafe/core/clock.hpp"

namespace prodsafe::metrics {

using Label = std::pair<std::string_view, std::string_view>;

enum class ViolationKind {
  kForbiddenLabel,    // error
  kInvalidName,       // error
  kCardinalityLimit,  // error
  kUnboundedValue,    // warning
};

struct Violation {
  ViolationKind kind = ViolationKind::kForbiddenLabel;
  bool error = true;
  std::string label{};  // empty for metric-level violations
  std::string message{};
};

struct ValidationResult {
  bool is_valid = true;
  std::vector<Violation> violations{};
};

struct GuardOptions {
  // Throw CardinalityViolation on errors instead of logging. Default: false.
  bool strict_mode = false;
  // Distinct label sets per metric before kCardinalityLimit. Default: 2,000.
  std::size_t max_label_sets = 2000;
  // Metrics tracked; every label set of a further metric is refused
  // (kCardinalityLimit), as nothing is remembered to limit it. Default: 10,000.
  std::size_t max_metrics = 10000;
  // Names that match a forbidden pattern but are known to be small, e.g.
  // "strategy_id". Default: none.
  std::set<std::string, std::less<>> allowed_labels{};
  // Added to the built-in forbidden names. Default: none.
  std::set<std::string, std::less<>> extra_forbidden_labels{};
  // Least time between two warning logs for one metric. Default: 60 s.
  std::chrono::milliseconds log_interval = std::chrono::seconds(60);
  // Default: SystemClock::instance().
  Clock* clock = nullptr;
};

class MetricsCardinalityGuard {
 public:
  explicit MetricsCardinalityGuard(GuardOptions options = {});

  ValidationResult validate_labels(std::string_view metric, std::span<const Label> labels);
  ValidationResult validate_labels(std::string_view metric, std::initializer_list<Label> labels) {
    return validate_labels(metric, std::span<const Label>(labels.begin(), labels.size()));
  }
  ValidationResult validate_labels(std::string_view metric,
                                   const std::map<std::string, std::string>& labels);

  // Whether `name` is forbidden as a label name (built-in list, patterns,
  // extras, minus the allowlist).
  [[nodiscard]] bool is_forbidden_label(std::string_view name) const;

  // Label sets seen for `metric` (at most max_label_sets).
  [[nodiscard]] std::size_t label_sets(std::string_view metric) const;
  // Validations that found at least one error / only warnings.
  [[nodiscard]] std::uint64_t errors() const noexcept { return errors_.load(); }
  [[nodiscard]] std::uint64_t warnings() const noexcept { return warnings_.load(); }
  [[nodiscard]] const GuardOptions& options() const noexcept { return options_; }

 private:
  struct MetricState {
    // Label-set hash -> whether the set has name errors (forbidden or invalid
    // label names: in warning mode such a set is still tracked and limited).
    std::unordered_map<std::uint64_t, bool> seen;
    // Label sets refused by the limit, at most max_label_sets of them (past
    // that, a refused set is counted at each validation).
    std::unordered_set<std::uint64_t> refused;
    Clock::SteadyTime last_log{};
    bool logged = false;
  };

  // The name and value checks, which depend on nothing but the arguments.
  ValidationResult check_names(std::string_view metric, std::span<const Label> labels) const;
  [[nodiscard]] std::string limit_message(std::string_view metric) const;
  void add_limit_violation(std::string_view metric, ValidationResult& result) const;
  ValidationResult check_new(std::string_view metric, std::span<const Label> labels,
                             std::uint64_t hash, MetricState* state);
  void report(std::string_view metric, const ValidationResult& result, MetricState* state);

  GuardOptions options_;
  Clock& clock_;
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const noexcept {
      return std::hash<std::string_view>{}(name);
    }
  };
  // Guards metrics_ and untracked_ (shared for lookups, exclusive for
  // changes); options_ and clock_ never change, the counters are atomic.
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, MetricState, NameHash, std::equal_to<>> metrics_;
  // Only its log time is used: one warning a log_interval for all metrics past
  // max_metrics.
  MetricState untracked_;
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<std::uint64_t> warnings_{0};
};

// The process-wide guard (warning mode, default options).
MetricsCardinalityGuard& global_guard();
// The seed's validate_metric_labels: global_guard().validate_labels(...).is_valid.
bool validate_metric_labels(std::string_view metric,
                            const std::map<std::string, std::string>& labels);

// Whether a label value looks unbounded: a UUID, a run of 16+ hex digits or
// 10+ decimal digits, or an ISO-8601 timestamp.
[[nodiscard]] bool looks_unbounded(std::string_view value) noexcept;

}  // namespace prodsafe::metrics
