// A bounded LRU of completed results, so a duplicate is answered in process.
// Thread safety: safe for concurrent use.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "prodsafe/core/clock.hpp"

namespace prodsafe::idempotency {

class ResultCache {
 public:
  struct Entry {
    std::string fingerprint;
    std::string result;
    std::uint64_t token = 0;
    Clock::SteadyTime expires_at{};
  };

  explicit ResultCache(std::size_t capacity) : capacity_(capacity) {}

  // The entry for `key` if present and not expired at `now`.
  std::optional<Entry> get(const std::string& key, Clock::SteadyTime now);
  void put(const std::string& key, Entry entry);
  [[nodiscard]] std::size_t size() const;

 private:
  using Order = std::list<std::string>;
  struct Slot {
    Entry entry;
    Order::iterator position;
  };

  const std::size_t capacity_;
  // Guards order_ and slots_.
  mutable std::mutex mutex_;
  Order order_;  // most recently used first
  std::unordered_map<std::string, Slot> slots_;
};

}  // namespace prodsafe::idempotency
