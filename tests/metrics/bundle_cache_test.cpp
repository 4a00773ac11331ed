// BundleCache (src/metrics): a key's series resolved once, the keys bounded.
#include "bundle_cache.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/metrics/registry.hpp"

namespace prodsafe::metrics {
namespace {

TEST(BundleCacheTest, MakesEachKeyOnceAndBoundsTheKeys) {
  Registry registry;
  auto& family = registry.counter("prodsafe_bundle_total", "x", {"job_type"});
  int made = 0;
  BundleCache<Counter*> cache(
      [&](std::string_view key) {
        ++made;
        return &family.labels({key});
      },
      2);
  cache.get("a")->inc();
  cache.get("a")->inc();
  cache.get("b")->inc();
  cache.get("c")->inc();  // past max_keys: the overflow bundle
  cache.get("d")->inc();
  EXPECT_EQ(made, 3);
  EXPECT_EQ(family.labels({"a"}).value(), 2.0);
  EXPECT_EQ(family.labels({std::string(kOverflowValue)}).value(), 2.0);
}

TEST(BundleCacheTest, AMakeThatThrowsLeavesNothingBehind) {
  std::vector<std::string> made_for;
  BundleCache<std::size_t> cache(
      [&](std::string_view key) {
        made_for.emplace_back(key);
        if (made_for.size() == 1) throw std::runtime_error("registry refused " + std::string(key));
        return made_for.size();
      },
      1);
  EXPECT_THROW((void)cache.get("payments"), std::runtime_error);
  EXPECT_EQ(cache.get("payments"), 2U) << "made again, not a null entry dereferenced";
  EXPECT_EQ(cache.get("payments"), 2U);
  EXPECT_EQ(cache.get("other"), 3U);
  EXPECT_EQ(made_for,
            (std::vector<std::string>{"payments", "payments", std::string(kOverflowValue)}))
      << "the failed make took no key slot: payments got its own bundle, other overflowed";
}

}  // namespace
}  // namespace prodsafe::metrics
