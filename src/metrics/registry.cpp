#include "prodsafe/metrics/registry.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/metrics/names.hpp"
#include "prodsafe/metrics/text_serializer.hpp"
#include "registration_checks.hpp"

namespace prodsafe::metrics {
namespace {

void add_to(std::atomic<double>& target, double amount) {
  target.fetch_add(amount, std::memory_order_relaxed);
}

}  // namespace

void Counter::inc(double amount) noexcept {
  if (amount == 0) return;
  if (!(amount > 0) || std::isinf(amount)) {  // NaN, negative or infinite
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (amount < 9007199254740992.0 && amount == std::floor(amount)) {
    whole_.fetch_add(static_cast<std::uint64_t>(amount), std::memory_order_relaxed);
  } else {
    add_to(fraction_, amount);
  }
}

void Gauge::inc(double amount) noexcept { add_to(value_, amount); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  for (std::size_t i = 0; i + 1 < bounds_.size(); ++i) {
    if (!(bounds_[i] < bounds_[i + 1])) {
      throw InvalidArgument("histogram bucket bounds must be strictly increasing");
    }
  }
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::observe(double value) noexcept {
  if (!std::isfinite(value)) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const auto bucket = static_cast<std::size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  add_to(sum_, value);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<std::uint64_t> Histogram::counts() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = counts_[i].load(std::memory_order_relaxed);
  return out;
}

std::vector<double> default_latency_bounds() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

template <class Series>
Family<Series>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                       MetricsCardinalityGuard& guard, std::vector<double> bounds, bool guarded)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      guard_(guard),
      guarded_(guarded),
      bounds_(std::move(bounds)) {}

template <class Series>
Series& Family<Series>::make(const std::vector<std::string>& key) {
  auto [it, inserted] = series_.try_emplace(key);
  if (inserted) {
    if constexpr (std::is_same_v<Series, Histogram>) {
      it->second = std::make_unique<Histogram>(bounds_);
    } else {
      it->second = std::make_unique<Series>();
    }
  }
  return *it->second;
}

template <class Series>
Series& Family<Series>::labels(std::initializer_list<std::string_view> values) {
  return labels(std::span<const std::string_view>(values.begin(), values.size()));
}

template <class Series>
Series& Family<Series>::labels(std::span<const std::string_view> values) {
  if (values.size() != label_names_.size()) {
    throw InvalidArgument(fmt::format("metric {} has {} label(s), got {} value(s)", name_,
                                      label_names_.size(), values.size()));
  }
  std::vector<std::string> key;
  key.reserve(values.size());
  bool sanitised = false;
  for (std::string_view value : values) {
    key.push_back(sanitize_utf8(value));
    sanitised = sanitised || key.back() != value;
  }
  if (sanitised && invalid_utf8_.fetch_add(1, std::memory_order_relaxed) == 0) {
    logger()->warn(
        "metric {}: a label value is not valid UTF-8 (Prometheus would refuse the whole scrape); "
        "ill-formed bytes are replaced by U+FFFD, counted in prodsafe_metrics_invalid_utf8_total "
        "and not logged again for this metric",
        name_);
  }
  {
    std::lock_guard lock(mutex_);
    if (auto found = series_.find(key); found != series_.end()) return *found->second;
    if (auto found = refused_.find(key); found != refused_.end()) return *found->second;
  }
  std::vector<Label> pairs;
  pairs.reserve(key.size());
  for (std::size_t i = 0; i < key.size(); ++i) pairs.emplace_back(label_names_[i], key[i]);
  // Only the limit sends a label set to the overflow series: a forbidden or
  // invalid label name was dealt with when the family was made (thrown in
  // strict mode, logged otherwise), and refusing every set over it would
  // blank the family.
  bool accepted = true;
  if (guarded_) {
    try {
      const ValidationResult result = guard_.validate_labels(name_, pairs);
      accepted = std::none_of(result.violations.begin(), result.violations.end(),
                              [](const Violation& violation) {
                                return violation.kind == ViolationKind::kCardinalityLimit;
                              });
    } catch (const CardinalityViolation&) {
      accepted = false;
    }
  }
  std::lock_guard lock(mutex_);
  if (accepted) return make(key);
  Series& overflow =
      make(std::vector<std::string>(label_names_.size(), std::string(kOverflowValue)));
  if (refused_.contains(key)) return overflow;  // another thread refused it meanwhile
  overflowed_.fetch_add(1, std::memory_order_relaxed);
  // Remembered so it counts once, as many as the guard admits (memory bound).
  if (refused_.size() < guard_.options().max_label_sets)
    refused_.emplace(std::move(key), &overflow);
  return overflow;
}

template <class Series>
std::uint64_t Family<Series>::rejected() const {
  if constexpr (std::is_same_v<Series, Gauge>) {
    return 0;
  } else {
    std::lock_guard lock(mutex_);
    std::uint64_t total = 0;
    for (const auto& entry : series_) total += entry.second->rejected();
    return total;
  }
}

template <class Series>
std::size_t Family<Series>::size() const {
  std::lock_guard lock(mutex_);
  return series_.size();
}

template <class Series>
void Family<Series>::for_each(
    const std::function<void(const std::vector<std::string>&, const Series&)>& visit) const {
  std::lock_guard lock(mutex_);
  for (const auto& [values, series] : series_) visit(values, *series);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Registry::Registry(MetricsCardinalityGuard* guard)
    : guard_(guard != nullptr ? *guard : global_guard()), id_([] {
        static std::atomic<std::uint64_t> next{1};
        return next.fetch_add(1, std::memory_order_relaxed);
      }()) {
  // Not guarded: their label values are the registry's own family names and
  // two severities, and they must report when the guard refuses everything.
  const auto self_report = [this](std::string_view name, std::string_view help, std::string label) {
    return &get<Counter>(MetricType::kCounter, name, help, {std::move(label)}, {}, false);
  };
  violations_ =
      self_report("prodsafe_metrics_label_violations_total",
                  "Label sets the cardinality guard refused (error) or warned about.", "severity");
  overflow_ = self_report("prodsafe_metrics_overflow_total",
                          "Label sets a metric sent to its __overflow__ series.", "metric");
  invalid_utf8_ =
      self_report("prodsafe_metrics_invalid_utf8_total",
                  "labels() calls whose values were not valid UTF-8 and were sanitised.", "metric");
  rejected_ = self_report("prodsafe_metrics_rejected_values_total",
                          "Values ignored: NaN or infinite observations, NaN, infinite or negative "
                          "counter increments.",
                          "metric");
}

void Registry::refresh_self_report() const {
  std::lock_guard report_lock(self_report_mutex_);
  const std::uint64_t errors = guard_.errors();
  const std::uint64_t warnings = guard_.warnings();
  auto& error_series = violations_->labels({"error"});
  auto& warning_series = violations_->labels({"warning"});
  if (errors > reported_errors_) error_series.inc(static_cast<double>(errors - reported_errors_));
  if (warnings > reported_warnings_)
    warning_series.inc(static_cast<double>(warnings - reported_warnings_));
  reported_errors_ = std::max(reported_errors_, errors);
  reported_warnings_ = std::max(reported_warnings_, warnings);

  // (family name, overflowed, invalid UTF-8, rejected) for every family.
  std::vector<std::tuple<std::string, std::uint64_t, std::uint64_t, std::uint64_t>> totals;
  {
    std::lock_guard lock(mutex_);
    const auto note = [&](const auto& families) {
      for (const auto& family : families) {
        const std::uint64_t rejected = family->rejected();
        if (family->overflowed() > 0 || family->invalid_utf8() > 0 || rejected > 0) {
          totals.emplace_back(family->name(), family->overflowed(), family->invalid_utf8(),
                              rejected);
        }
      }
    };
    note(counters_);
    note(gauges_);
    note(histograms_);
  }
  const auto bring_up_to_date = [](Family<Counter>& family,
                                   std::map<std::string, std::uint64_t, std::less<>>& reported,
                                   const std::string& name, std::uint64_t total) {
    if (total == 0) return;
    std::uint64_t& already = reported[name];
    if (total > already) family.labels({name}).inc(static_cast<double>(total - already));
    already = std::max(already, total);
  };
  for (const auto& [name, overflowed, invalid_utf8, rejected] : totals) {
    bring_up_to_date(*overflow_, reported_overflow_, name, overflowed);
    bring_up_to_date(*invalid_utf8_, reported_invalid_utf8_, name, invalid_utf8);
    // Logged here, once per metric, rather than on the (noexcept, lock-free)
    // update path.
    if (rejected > 0 && !reported_rejected_.contains(name)) {
      logger()->warn(
          "metric {}: {} value(s) ignored (a NaN or infinite histogram observation, or a NaN, "
          "infinite or negative counter increment); counted "
          "in prodsafe_metrics_rejected_values_total and not logged again for this metric",
          name, rejected);
    }
    bring_up_to_date(*rejected_, reported_rejected_, name, rejected);
  }
}

template <class Series>
Family<Series>& Registry::get(MetricType type, std::string_view name, std::string_view help_in,
                              std::vector<std::string> label_names, std::vector<double> bounds,
                              bool guarded) {
  if (!is_valid_metric_name(name)) {
    throw InvalidArgument(fmt::format(
        "metric name '{}' is not a valid Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)", name));
  }
  std::string help = sanitize_utf8(help_in);
  std::lock_guard lock(mutex_);
  if (const auto found = entries_.find(name); found != entries_.end()) {
    const Entry& entry = found->second;
    registration::check_same_family(name, {entry.type, entry.help, entry.label_names, entry.bounds},
                                    {type, help, label_names, bounds});
    return *static_cast<Family<Series>*>(found->second.family);
  }
  registration::check_label_names(type, name, label_names);
  std::vector<std::string> taken = exposition_names(type, name);
  for (const std::string& page_name : taken) {
    const auto owner = exposition_owners_.find(page_name);
    if (owner == exposition_owners_.end()) continue;
    registration::refuse_collision(type, name, entries_.find(owner->second)->second.type,
                                   owner->second, page_name);
  }
  check_forbidden_labels(name, label_names);
  std::unique_ptr<Family<Series>> family(
      new Family<Series>(std::string(name), help, label_names, guard_, bounds, guarded));
  Family<Series>& made = *family;
  for (std::string& page_name : taken) exposition_owners_.emplace(std::move(page_name), name);
  entries_.emplace(std::string(name), Entry{type, std::move(help), std::move(label_names),
                                            std::move(bounds), family.get()});
  if constexpr (std::is_same_v<Series, Counter>) {
    counters_.push_back(std::move(family));
  } else if constexpr (std::is_same_v<Series, Gauge>) {
    gauges_.push_back(std::move(family));
  } else {
    histograms_.push_back(std::move(family));
  }
  return made;
}

void Registry::check_forbidden_labels(std::string_view name,
                                      const std::vector<std::string>& label_names) const {
  for (const std::string& label : label_names) {
    if (!guard_.is_forbidden_label(label)) continue;
    const std::string problem = fmt::format(
        "label '{}' on {} has one value per entity and would create a series per value; drop it",
        label, name);
    if (guard_.options().strict_mode) throw CardinalityViolation(std::string(name), problem);
    logger()->warn("{}", problem);
  }
}

Family<Counter>& Registry::counter(std::string_view name, std::string_view help,
                                   std::vector<std::string> label_names) {
  return get<Counter>(MetricType::kCounter, name, help, std::move(label_names), {});
}

Family<Gauge>& Registry::gauge(std::string_view name, std::string_view help,
                               std::vector<std::string> label_names) {
  return get<Gauge>(MetricType::kGauge, name, help, std::move(label_names), {});
}

Family<Histogram>& Registry::histogram(std::string_view name, std::string_view help,
                                       std::vector<std::string> label_names,
                                       std::vector<double> bounds) {
  registration::check_bounds(name, bounds);
  return get<Histogram>(MetricType::kHistogram, name, help, std::move(label_names),
                        std::move(bounds));
}

void Registry::visit(const RegistryVisitor& visitor) const {
  refresh_self_report();
  std::lock_guard lock(mutex_);
  for (const auto& [name, entry] : entries_) {
    switch (entry.type) {
      case MetricType::kCounter:
        if (visitor.counter) visitor.counter(*static_cast<const Family<Counter>*>(entry.family));
        break;
      case MetricType::kGauge:
        if (visitor.gauge) visitor.gauge(*static_cast<const Family<Gauge>*>(entry.family));
        break;
      case MetricType::kHistogram:
        if (visitor.histogram)
          visitor.histogram(*static_cast<const Family<Histogram>*>(entry.family));
        break;
    }
  }
}

Registry& default_registry() {
  static Registry registry;
  return registry;
}

std::vector<MetricFamily> Registry::collect() const {
  std::vector<MetricFamily> families;
  const auto add = [&families](const auto& family, MetricType type) -> MetricFamily& {
    return families.emplace_back(
        MetricFamily{family.name(), family.help(), type, family.label_names(), {}});
  };
  visit({
      .counter =
          [&](const Family<Counter>& family) {
            MetricFamily& out = add(family, MetricType::kCounter);
            family.for_each([&](const std::vector<std::string>& values, const Counter& series) {
              out.samples.push_back({values, series.value(), {}});
            });
          },
      .gauge =
          [&](const Family<Gauge>& family) {
            MetricFamily& out = add(family, MetricType::kGauge);
            family.for_each([&](const std::vector<std::string>& values, const Gauge& series) {
              out.samples.push_back({values, series.value(), {}});
            });
          },
      .histogram =
          [&](const Family<Histogram>& family) {
            MetricFamily& out = add(family, MetricType::kHistogram);
            family.for_each([&](const std::vector<std::string>& values, const Histogram& series) {
              HistogramSample histogram{series.bounds(), series.counts(), series.sum(), 0};
              for (const std::uint64_t in_bucket : histogram.counts) histogram.count += in_bucket;
              out.samples.push_back({values, 0.0, std::move(histogram)});
            });
          },
  });
  return families;
}

std::string Registry::serialize() const { return to_prometheus_text(collect()); }

}  // namespace prodsafe::metrics
