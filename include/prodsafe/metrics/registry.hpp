// Counters, gauges and histograms with labels, kept in a Registry, which
// collects them as plain data (MetricFamily, metric_family.hpp) for a
// serializer or exporter to write: the Prometheus text format
// (text_serializer.hpp), StatsD (statsd.hpp).
//
//   Registry registry;
//   auto& orders = registry.counter("orders_total", "Orders placed.", {"symbol", "side"});
//   orders.labels({"BTCUSDT", "buy"}).inc();
//   std::string page = to_prometheus_text(registry.collect());  // what /metrics serves
//
// Every new label set passes the family's MetricsCardinalityGuard (the global
// one unless the registry was given its own). A label set past the metric's
// max_label_sets, or any label set of a metric past the guard's max_metrics,
// is counted in the family's overflow series, whose every label is
// "__overflow__", so memory stays bounded (other violations are only logged).
// Names are checked when the family is made: a registration whose exposition
// would not parse or would collide with another family's is refused
// (InvalidArgument; see Registry::counter); a forbidden label name throws
// CardinalityViolation in strict mode and is logged otherwise.
//
// A label value that is not valid UTF-8 (Prometheus refuses the whole scrape
// over one) has its ill-formed bytes replaced by U+FFFD (sanitize_utf8 in
// names.hpp) before it is used; the family counts it and logs the first.
//
// Each registry also reports on itself: prodsafe_metrics_label_violations_total
// {severity} (its guard's errors and warnings),
// prodsafe_metrics_overflow_total{metric} (label sets a family sent to its
// overflow series), prodsafe_metrics_invalid_utf8_total{metric} (labels()
// calls with a value that was not UTF-8) and
// prodsafe_metrics_rejected_values_total{metric} (values its series ignored:
// NaN or infinite observations, NaN, infinite or negative counter
// increments), brought up to date whenever it is collected or
// visited; the first rejected value of a metric is logged then.
//
// prodsafe's modules record their own instruments (docs/metrics.md) in
// default_registry() unless their options name another registry.
//
// Thread safety: safe for concurrent use. A series reference stays valid for
// the registry's life; holding it makes an update a single atomic operation.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "prodsafe/metrics/cardinality_guard.hpp"
#include "prodsafe/metrics/metric_family.hpp"
#include "prodsafe/metrics/names.hpp"

namespace prodsafe::metrics {

inline constexpr std::string_view kOverflowValue = "__overflow__";

class Counter {
 public:
  // Adds one: a single atomic add.
  void inc() noexcept { whole_.fetch_add(1, std::memory_order_relaxed); }
  // Adds `amount`. A NaN, infinite or negative amount is ignored (a counter
  // only goes up, and stays a number) and counted in rejected().
  void inc(double amount) noexcept;
  [[nodiscard]] double value() const noexcept {
    return static_cast<double>(whole_.load(std::memory_order_relaxed)) +
           fraction_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t rejected() const noexcept {
    return rejected_.load(std::memory_order_relaxed);
  }

 private:
  // Whole increments take an integer add (cheaper than a CAS loop on a double).
  std::atomic<std::uint64_t> whole_{0};
  std::atomic<double> fraction_{0.0};
  std::atomic<std::uint64_t> rejected_{0};
};

class Gauge {
 public:
  void set(double value) noexcept { value_.store(value, std::memory_order_relaxed); }
  void inc(double amount = 1.0) noexcept;
  void dec(double amount = 1.0) noexcept { inc(-amount); }
  [[nodiscard]] double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  // `bounds` are the upper bounds of the buckets, strictly increasing; +Inf
  // is implied.
  explicit Histogram(std::vector<double> bounds);
  [[nodiscard]] const std::vector<double>& bounds() const noexcept { return bounds_; }
  // A NaN or infinite value is ignored (it would make _sum NaN or infinite for
  // good) and counted in rejected().
  void observe(double value) noexcept;
  // Per-bucket (not cumulative) counts; the last is the +Inf bucket.
  [[nodiscard]] std::vector<std::uint64_t> counts() const;
  [[nodiscard]] double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t count() const noexcept {
    return count_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t rejected() const noexcept {
    return rejected_.load(std::memory_order_relaxed);
  }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> rejected_{0};
};

// Default histogram bounds, in seconds: 0.5 ms to 10 s.
[[nodiscard]] std::vector<double> default_latency_bounds();

template <class Series>
class Family;

// What Registry::visit() calls, once per family, in name order. Unset
// members skip that type.
struct RegistryVisitor {
  std::function<void(const Family<Counter>&)> counter{};
  std::function<void(const Family<Gauge>&)> gauge{};
  std::function<void(const Family<Histogram>&)> histogram{};
};

// One metric name with its label names; a series per label-value set.
template <class Series>
class Family {
 public:
  // The series for these label values (in the order of the label names).
  // Throws InvalidArgument when the number of values is wrong.
  Series& labels(std::initializer_list<std::string_view> values);
  Series& labels(std::span<const std::string_view> values);

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const std::string& help() const noexcept { return help_; }
  [[nodiscard]] const std::vector<std::string>& label_names() const noexcept {
    return label_names_;
  }
  [[nodiscard]] std::size_t size() const;
  // Values its series ignored (see Counter::inc and Histogram::observe).
  [[nodiscard]] std::uint64_t rejected() const;
  // Label sets sent to the overflow series (each counted once while fewer
  // than the guard's max_label_sets have been; past that, at each call).
  [[nodiscard]] std::uint64_t overflowed() const noexcept { return overflowed_.load(); }
  // labels() calls whose values were not valid UTF-8 (and were sanitised).
  [[nodiscard]] std::uint64_t invalid_utf8() const noexcept { return invalid_utf8_.load(); }

  // (label values, series) pairs in a stable order, for exposition.
  void for_each(
      const std::function<void(const std::vector<std::string>&, const Series&)>& visit) const;

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         MetricsCardinalityGuard& guard, std::vector<double> bounds, bool guarded);
  Series& make(const std::vector<std::string>& key);

  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  MetricsCardinalityGuard& guard_;
  const bool guarded_;          // false for the registry's own self-report families
  std::vector<double> bounds_;  // histograms only
  // Guards series_ and refused_ (the maps; a series updates itself
  // atomically). The fields above never change after construction; the
  // counters below are atomic.
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Series>> series_;
  // Label sets sent to the overflow series, at most the guard's
  // max_label_sets of them (past that, each call counts in overflowed_).
  std::map<std::vector<std::string>, Series*> refused_;
  std::atomic<std::uint64_t> overflowed_{0};
  std::atomic<std::uint64_t> invalid_utf8_{0};
};

class Registry {
 public:
  // `guard` must outlive the registry. Default: global_guard().
  explicit Registry(MetricsCardinalityGuard* guard = nullptr);

  // The family of that name, made on first use; asking again with the same
  // type, help, label names (and buckets) returns the same family. Throws
  // InvalidArgument, naming the metric, what it clashes with and what to do,
  // for any registration that would make the page unparseable (Prometheus
  // then drops every series of the scrape):
  //   - an invalid metric name or label name (also in warning mode), a label
  //     name given twice, or a reserved one: `le` on a histogram, `quantile`;
  //   - a name already registered with another type, help, label names or
  //     buckets;
  //   - a name that meets another family's on the page (exposition_names in
  //     names.hpp), in either order: histogram `jobs` beside `jobs_count`,
  //     `jobs_sum` or `jobs_bucket`; counter `x` beside `x_total`;
  //   - histogram bounds that are not finite and strictly increasing (+Inf
  //     is implied).
  // Help text has ill-formed UTF-8 replaced by U+FFFD (Prometheus refuses a
  // HELP line that is not UTF-8). A forbidden label name (order_id ...)
  // throws CardinalityViolation in strict mode and is logged otherwise.
  Family<Counter>& counter(std::string_view name, std::string_view help,
                           std::vector<std::string> label_names = {});
  Family<Gauge>& gauge(std::string_view name, std::string_view help,
                       std::vector<std::string> label_names = {});
  Family<Histogram>& histogram(std::string_view name, std::string_view help,
                               std::vector<std::string> label_names = {},
                               std::vector<double> bounds = default_latency_bounds());

  // Every family and its series as they are now, sorted by name (each
  // family's series by label values).
  [[nodiscard]] std::vector<MetricFamily> collect() const;
  // to_prometheus_text(collect()): the Prometheus text format 0.0.4.
  [[nodiscard]] std::string serialize() const;
  // Calls the visitor for every family, sorted by name, with the live
  // family (collect() is built on it).
  void visit(const RegistryVisitor& visitor) const;

  [[nodiscard]] MetricsCardinalityGuard& guard() const noexcept { return guard_; }
  // Unique among the registries this process has made (never reused, unlike
  // an address): for caches of series that may outlive a registry.
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }

 private:
  struct Entry {
    MetricType type;
    std::string help;  // as registered, after sanitize_utf8
    std::vector<std::string> label_names;
    std::vector<double> bounds;  // histograms only
    void* family;
  };
  template <class Series>
  Family<Series>& get(MetricType type, std::string_view name, std::string_view help,
                      std::vector<std::string> label_names, std::vector<double> bounds,
                      bool guarded = true);

  // Throws CardinalityViolation from a strict guard for a forbidden label
  // name (order_id ...); logs it otherwise.
  void check_forbidden_labels(std::string_view name,
                              const std::vector<std::string>& label_names) const;

  // Brings the self-report families up to date.
  void refresh_self_report() const;

  MetricsCardinalityGuard& guard_;
  const std::uint64_t id_;
  // Guards entries_, exposition_owners_, counters_, gauges_ and histograms_.
  // Taken after self_report_mutex_, and before a family's mutex_, when held
  // together.
  mutable std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> entries_;
  // Every name a family takes on the page (exposition_names) -> that family's name.
  std::map<std::string, std::string, std::less<>> exposition_owners_;
  std::vector<std::unique_ptr<Family<Counter>>> counters_;
  std::vector<std::unique_ptr<Family<Gauge>>> gauges_;
  std::vector<std::unique_ptr<Family<Histogram>>> histograms_;
  // Set in the constructor, then only read.
  Family<Counter>* violations_ = nullptr;
  Family<Counter>* overflow_ = nullptr;
  Family<Counter>* invalid_utf8_ = nullptr;
  Family<Counter>* rejected_ = nullptr;
  // Guards reported_errors_, reported_warnings_ and the reported_* maps (what
  // the self-report families already count), so two refreshes never count a
  // change twice.
  mutable std::mutex self_report_mutex_;
  mutable std::uint64_t reported_errors_ = 0;
  mutable std::uint64_t reported_warnings_ = 0;
  mutable std::map<std::string, std::uint64_t, std::less<>> reported_overflow_;
  mutable std::map<std::string, std::uint64_t, std::less<>> reported_invalid_utf8_;
  mutable std::map<std::string, std::uint64_t, std::less<>> reported_rejected_;
};

// The registry prodsafe's own instruments use by default (with the global
// guard). Serve it with MetricsServer or push it with StatsdExporter.
[[nodiscard]] Registry& default_registry();

}  // namespace prodsafe::metrics
