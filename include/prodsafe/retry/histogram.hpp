// How many attempts jobs needed (the seed's RetryHistogram), in exactly the
// seed's buckets: 1, 2, 3, 4-5, 6-10, 11-20, 21+.
//
// Thread safety: record() and the readers are safe to call concurrently
// (relaxed atomics: a snapshot taken during records may mix old and new).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace prodsafe::retry {

inline constexpr std::size_t kHistogramBuckets = 7;

class RetryHistogram {
 public:
  using Counts = std::array<std::uint64_t, kHistogramBuckets>;

  RetryHistogram() = default;
  explicit RetryHistogram(const Counts& counts);
  RetryHistogram(const RetryHistogram& other);
  RetryHistogram& operator=(const RetryHistogram& other);

  // Counts one job that needed `attempts` attempts (values below 1 count as 1).
  void record(int attempts) noexcept {
    counts_[bucket_for(attempts)].fetch_add(1, std::memory_order_relaxed);
  }
  // Adds another histogram's counts to this one.
  void merge(const RetryHistogram& other) noexcept;

  [[nodiscard]] Counts counts() const noexcept;
  // Each bucket's share of the total (all zero when empty).
  [[nodiscard]] std::array<double, kHistogramBuckets> fractions() const noexcept;
  [[nodiscard]] std::uint64_t total() const noexcept;

  // The bucket `attempts` falls in: 0 for 1 (and below), ..., 6 for 21+.
  [[nodiscard]] static constexpr std::size_t bucket_for(int attempts) noexcept {
    if (attempts <= 1) return 0;
    if (attempts == 2) return 1;
    if (attempts == 3) return 2;
    if (attempts <= 5) return 3;
    if (attempts <= 10) return 4;
    if (attempts <= 20) return 5;
    return 6;
  }
  // "1", "2", "3", "4-5", "6-10", "11-20", "21+".
  [[nodiscard]] static std::string_view bucket_label(std::size_t bucket) noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, kHistogramBuckets> counts_{};
};

}  // namespace prodsafe::retry
