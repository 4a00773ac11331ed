// A small bundle of series per key (an effect type, a breaker, a job type),
// resolved from a Registry once and then reused, so an instrumented hot path
// pays one shared-lock lookup instead of a label lookup per series.
//
//   struct Bundle { Counter* attempts; Counter* retries; };
//   BundleCache<Bundle> cache([&](std::string_view job_type) {
//     return Bundle{&attempts.labels({job_type}), &retries.labels({job_type})};
//   });
//   cache.get("payments").attempts->inc();
//
// Memory is bounded: past `max_keys` distinct keys, further keys share the
// bundle made for kOverflowValue ("__overflow__").
//
// Internal to prodsafe: the modules' instruments use it; users never need it.
//
// Thread safety: safe for concurrent use. A returned reference stays valid
// for the cache's life.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "prodsafe/metrics/registry.hpp"

namespace prodsafe::metrics {

template <class Bundle>
class BundleCache {
 public:
  using Make = std::function<Bundle(std::string_view key)>;

  // `make` builds the bundle for a key (under the cache's lock, once per key
  // while it succeeds: when it throws, get() throws and nothing is stored, so
  // the next get() of that key calls it again). Default max_keys: 1,000.
  explicit BundleCache(Make make, std::size_t max_keys = 1000)
      : make_(std::move(make)), max_keys_(max_keys) {}

  const Bundle& get(std::string_view key) {
    {
      std::shared_lock lock(mutex_);
      if (const auto found = bundles_.find(key); found != bundles_.end()) return *found->second;
    }
    std::unique_lock lock(mutex_);
    if (const auto found = bundles_.find(key); found != bundles_.end()) return *found->second;
    if (bundles_.size() >= max_keys_) {
      key = kOverflowValue;
      if (const auto found = bundles_.find(key); found != bundles_.end()) return *found->second;
    }
    // Made before it is stored: a make() that throws leaves no entry behind.
    auto bundle = std::make_unique<Bundle>(make_(key));
    return *bundles_.emplace(std::string(key), std::move(bundle)).first->second;
  }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
      return std::hash<std::string_view>{}(text);
    }
  };
  const Make make_;
  const std::size_t max_keys_;
  // Guards bundles_ (the map, not the bundles: a stored bundle never changes).
  std::shared_mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<Bundle>, Hash, std::equal_to<>> bundles_;
};

}  // namespace prodsafe::metrics
