#include "result_cache.hpp"

namespace prodsafe::idempotency {

std::optional<ResultCache::Entry> ResultCache::get(const std::string& key, Clock::SteadyTime now) {
  std::lock_guard lock(mutex_);
  const auto found = slots_.find(key);
  if (found == slots_.end()) return std::nullopt;
  if (found->second.entry.expires_at <= now) {
    order_.erase(found->second.position);
    slots_.erase(found);
    return std::nullopt;
  }
  order_.splice(order_.begin(), order_, found->second.position);
  return found->second.entry;
}

void ResultCache::put(const std::string& key, Entry entry) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mutex_);
  const auto found = slots_.find(key);
  if (found != slots_.end()) {
    found->second.entry = std::move(entry);
    order_.splice(order_.begin(), order_, found->second.position);
    return;
  }
  if (slots_.size() >= capacity_) {
    slots_.erase(order_.back());
    order_.pop_back();
  }
  order_.push_front(key);
  slots_.emplace(key, Slot{std::move(entry), order_.begin()});
}

std::size_t ResultCache::size() const {
  std::lock_guard lock(mutex_);
  return slots_.size();
}

}  // namespace prodsafe::idempotency
