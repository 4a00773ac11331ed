#include "prodsafe/retry/histogram.hpp"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace prodsafe::retry {
namespace {

TEST(RetryHistogramTest, BucketBoundaries) {
  struct Row {
    int attempts;
    std::size_t bucket;
    const char* label;
  };
  const Row table[] = {{-3, 0, "1"},       {0, 0, "1"},      {1, 0, "1"},      {2, 1, "2"},
                       {3, 2, "3"},        {4, 3, "4-5"},    {5, 3, "4-5"},    {6, 4, "6-10"},
                       {10, 4, "6-10"},    {11, 5, "11-20"}, {20, 5, "11-20"}, {21, 6, "21+"},
                       {1000000, 6, "21+"}};
  for (const Row& row : table) {
    EXPECT_EQ(RetryHistogram::bucket_for(row.attempts), row.bucket) << row.attempts;
    EXPECT_EQ(RetryHistogram::bucket_label(row.bucket), row.label) << row.attempts;
  }
}

TEST(RetryHistogramTest, CountsFractionsAndMerge) {
  RetryHistogram histogram;
  EXPECT_EQ(histogram.fractions()[0], 0.0);
  for (int attempts : {1, 1, 1, 2, 5, 30}) histogram.record(attempts);
  EXPECT_EQ(histogram.total(), 6u);
  EXPECT_EQ(histogram.counts(), (RetryHistogram::Counts{3, 1, 0, 1, 0, 0, 1}));
  EXPECT_DOUBLE_EQ(histogram.fractions()[0], 0.5);
  RetryHistogram other;
  other.record(3);
  other.record(12);
  histogram.merge(other);
  EXPECT_EQ(histogram.counts(), (RetryHistogram::Counts{3, 1, 1, 1, 0, 1, 1}));
  RetryHistogram copy = histogram;
  EXPECT_EQ(copy.total(), 8u);
}

TEST(RetryHistogramTest, ConcurrentRecordsAllCount) {
  RetryHistogram histogram;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) histogram.record(t + 1);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(histogram.counts(), (RetryHistogram::Counts{10000, 10000, 10000, 10000, 0, 0, 0}));
}

}  // namespace
}  // namespace prodsafe::retry
