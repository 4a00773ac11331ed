#include "prodsafe/retry/histogram.hpp"

namespace prodsafe::retry {

RetryHistogram::RetryHistogram(const Counts& counts) {
  for (std::size_t i = 0; i < kHistogramBuckets; ++i) counts_[i].store(counts[i]);
}

RetryHistogram::RetryHistogram(const RetryHistogram& other) : RetryHistogram(other.counts()) {}

RetryHistogram& RetryHistogram::operator=(const RetryHistogram& other) {
  const Counts copied = other.counts();
  for (std::size_t i = 0; i < kHistogramBuckets; ++i) counts_[i].store(copied[i]);
  return *this;
}

void RetryHistogram::merge(const RetryHistogram& other) noexcept {
  const Counts added = other.counts();
  for (std::size_t i = 0; i < kHistogramBuckets; ++i) {
    counts_[i].fetch_add(added[i], std::memory_order_relaxed);
  }
}

RetryHistogram::Counts RetryHistogram::counts() const noexcept {
  Counts out{};
  for (std::size_t i = 0; i < kHistogramBuckets; ++i)
    out[i] = counts_[i].load(std::memory_order_relaxed);
  return out;
}

std::uint64_t RetryHistogram::total() const noexcept {
  std::uint64_t sum = 0;
  for (const auto& count : counts_) sum += count.load(std::memory_order_relaxed);
  return sum;
}

std::array<double, kHistogramBuckets> RetryHistogram::fractions() const noexcept {
  const Counts snapshot = counts();
  std::uint64_t sum = 0;
  for (std::uint64_t count : snapshot) sum += count;
  std::array<double, kHistogramBuckets> out{};
  if (sum == 0) return out;
  for (std::size_t i = 0; i < kHistogramBuckets; ++i) {
    out[i] = static_cast<double>(snapshot[i]) / static_cast<double>(sum);
  }
  return out;
}

std::string_view RetryHistogram::bucket_label(std::size_t bucket) noexcept {
  static constexpr std::array<std::string_view, kHistogramBuckets> kLabels = {
      "1", "2", "3", "4-5", "6-10", "11-20", "21+"};
  return bucket < kLabels.size() ? kLabels[bucket] : std::string_view("?");
}

}  // namespace prodsafe::retry
