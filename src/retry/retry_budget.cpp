#include "prodsafe/retry/retry_budget.hpp"

#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::retry {
namespace {

std::int64_t second_of(Clock::SteadyTime time) {
  return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}

}  // namespace

RetryBudget::RetryBudget(RetryBudgetOptions options)
    : options_(options),
      clock_(options.clock != nullptr ? *options.clock : SystemClock::instance()) {
  // NaN fails every comparison: it must be refused, not merely not negative.
  for (const auto& [name, value] :
       {std::pair{"ratio", options_.ratio},
        std::pair{"min_retries_per_second", options_.min_retries_per_second}}) {
    if (!std::isfinite(value) || value < 0) {
      throw InvalidArgument(
          fmt::format("RetryBudgetOptions::{} must be a finite number >= 0, got {}", name, value));
    }
  }
  if (options_.ttl < std::chrono::seconds(1) || options_.ttl > std::chrono::hours(1)) {
    throw InvalidArgument(fmt::format(
        "RetryBudgetOptions::ttl must be between 1 s and 1 h, got {} ms", options_.ttl.count()));
  }
  slots_.resize(static_cast<std::size_t>(
      std::chrono::duration_cast<std::chrono::seconds>(options_.ttl).count()));
}

RetryBudget::Slot& RetryBudget::slot_now() {
  const std::int64_t second = second_of(clock_.coarse_steady_now());
  Slot& slot = slots_[static_cast<std::size_t>(second % static_cast<std::int64_t>(slots_.size()))];
  if (slot.second != second) slot = Slot{second, 0, 0};
  return slot;
}

double RetryBudget::balance_locked(std::int64_t now_second) const {
  const auto window = static_cast<std::int64_t>(slots_.size());
  std::uint64_t requests = 0;
  std::uint64_t retries = 0;
  for (const Slot& slot : slots_) {
    if (slot.second < 0 || now_second - slot.second >= window) continue;
    requests += slot.requests;
    retries += slot.retries;
  }
  const double allowed = options_.min_retries_per_second * static_cast<double>(window) +
                         options_.ratio * static_cast<double>(requests);
  return allowed - static_cast<double>(retries);
}

void RetryBudget::record_request() {
  std::lock_guard lock(mutex_);
  ++slot_now().requests;
  ++total_requests_;
}

bool RetryBudget::try_withdraw() {
  std::lock_guard lock(mutex_);
  Slot& slot = slot_now();
  if (balance_locked(slot.second) < 1.0) {
    ++refused_;
    return false;
  }
  ++slot.retries;
  ++total_retries_;
  return true;
}

void RetryBudget::refund() {
  std::lock_guard lock(mutex_);
  // The newest second in the window that holds a retry: the withdrawal's, or,
  // when the refund comes after a second boundary and others retried since, a
  // later one (the window then counts one retry too few for at most as long
  // as the refund came late).
  const std::int64_t now_second = slot_now().second;
  const auto window = static_cast<std::int64_t>(slots_.size());
  for (std::int64_t second = now_second; second >= 0 && second > now_second - window; --second) {
    Slot& slot = slots_[static_cast<std::size_t>(second % window)];
    if (slot.second != second || slot.retries == 0) continue;
    --slot.retries;
    --total_retries_;
    return;
  }
}

double RetryBudget::balance() {
  std::lock_guard lock(mutex_);
  return balance_locked(slot_now().second);
}

std::uint64_t RetryBudget::requests() const {
  std::lock_guard lock(mutex_);
  return total_requests_;
}

std::uint64_t RetryBudget::retries() const {
  std::lock_guard lock(mutex_);
  return total_retries_;
}

std::uint64_t RetryBudget::refused() const {
  std::lock_guard lock(mutex_);
  return refused_;
}

}  // namespace prodsafe::retry
