// A retry budget in the manner of Finagle's RetryBudget and gRPC's retry
// throttling: retries are allowed up to `ratio` of the requests seen in the
// last `ttl`, plus `min_retries_per_second` × ttl, so a failing dependency
// cannot be hit with (max_attempts) × its normal load. Share one budget among
// all the callers of one dependency.
//
//   RetryBudget budget({.ratio = 0.2});
//   budget.record_request();            // once per original request
//   if (budget.try_withdraw()) retry(); // once per retry
//   budget.refund();                    // a withdrawn retry that was not made
//
// Thread safety: safe for concurrent use.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

#include "prodsafe/core/clock.hpp"

namespace prodsafe::retry {

struct RetryBudgetOptions {
  // Retries allowed per request, over the ttl; a finite number >= 0.
  // Default: 0.2 (20 %).
  double ratio = 0.2;
  // Retries always allowed, so that low traffic can still retry; a finite
  // number >= 0. Default: 10.
  double min_retries_per_second = 10;
  // How long requests and retries count, 1 s to 1 h (one counter per second).
  // Default: 10 s.
  std::chrono::milliseconds ttl = std::chrono::seconds(10);
  // Default: SystemClock::instance(); must outlive the budget.
  Clock* clock = nullptr;
};

class RetryBudget {
 public:
  // Throws InvalidArgument when an option is out of its range (above).
  explicit RetryBudget(RetryBudgetOptions options = {});

  // Counts one original request (not a retry).
  void record_request();
  // Takes one retry from the budget; false when it is spent.
  bool try_withdraw();
  // Gives back a retry taken by try_withdraw() and then not made (the
  // executor's gate refused it). Does nothing when no retry is left in the
  // window to give back.
  void refund();

  // Retries still allowed now.
  [[nodiscard]] double balance();
  [[nodiscard]] std::uint64_t requests() const;
  [[nodiscard]] std::uint64_t retries() const;
  [[nodiscard]] std::uint64_t refused() const;

 private:
  struct Slot {
    std::int64_t second = -1;
    std::uint64_t requests = 0;
    std::uint64_t retries = 0;
  };
  Slot& slot_now();
  [[nodiscard]] double balance_locked(std::int64_t now_second) const;

  RetryBudgetOptions options_;
  Clock& clock_;
  // Guards slots_, total_requests_, total_retries_ and refused_.
  mutable std::mutex mutex_;
  std::vector<Slot> slots_;  // one per second of the ttl
  std::uint64_t total_requests_ = 0;
  std::uint64_t total_retries_ = 0;
  std::uint64_t refused_ = 0;
};

}  // namespace prodsafe::retry
