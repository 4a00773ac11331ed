// The wrapper's counters and its metrics (docs/metrics.md):
//   prodsafe_idempotency_outcomes_total{effect_type, outcome}
//   prodsafe_idempotency_store_errors_total{effect_type}
//   prodsafe_idempotency_journal_committed_total
//   prodsafe_idempotency_journal_damaged_lines_total
// Thread safety: safe for concurrent use.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "../metrics/bundle_cache.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "prodsafe/metrics/registry.hpp"

namespace prodsafe::idempotency {

// The outcome label's values, in WrapperStats' terms.
enum class Event : std::size_t {
  kExecuted,
  kDuplicate,
  kConflict,
  kRecovered,
  kLeaseLost,
  kCommitPending,
  kInProgress,
  kFailureReplayed,
  kEffectError,
  kFailOpen,
  kEncodeError,
  kResultUnavailable,
};
inline constexpr std::size_t kEventCount = 12;

class Instruments {
 public:
  explicit Instruments(metrics::Registry& registry);

  void count(std::string_view effect_type, Event event) noexcept;
  void cache_hit() noexcept { cache_hits_.fetch_add(1, std::memory_order_relaxed); }
  void store_error(std::string_view effect_type) noexcept;
  void journal_committed() noexcept;
  void journal_damaged(std::size_t lines) noexcept;
  [[nodiscard]] WrapperStats stats() const noexcept;

 private:
  struct TypeSeries {
    std::array<metrics::Counter*, kEventCount> events{};
    metrics::Counter* store_errors = nullptr;
  };
  [[nodiscard]] const TypeSeries* series(std::string_view effect_type) noexcept;

  std::array<std::atomic<std::uint64_t>, kEventCount> events_{};
  std::atomic<std::uint64_t> cache_hits_{0};
  std::atomic<std::uint64_t> journal_committed_{0};
  std::atomic<std::uint64_t> journal_damaged_{0};
  metrics::Family<metrics::Counter>& outcomes_;
  metrics::Family<metrics::Counter>& store_errors_;
  metrics::Counter& journal_committed_series_;
  metrics::Counter& journal_damaged_series_;
  metrics::BundleCache<TypeSeries> by_type_;
};

}  // namespace prodsafe::idempotency
