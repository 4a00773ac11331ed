// What RetryInstruments holds, for the loop (executor.cpp) to record into:
// the families and, per job type, its series.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

#include "../metrics/bundle_cache.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/retry/executor.hpp"
#include "prodsafe/retry/retry_instruments.hpp"

namespace prodsafe::retry {

// The `reason` label of prodsafe_retry_gave_up_total.
enum class GaveUp : std::size_t { kExhausted, kBudget, kBreaker, kNotRetryable };
inline constexpr std::array<std::string_view, 4> kGaveUpReasons = {"exhausted", "budget", "breaker",
                                                                   "not_retryable"};

// The callbacks a loop calls: the `hook` label of
// prodsafe_retry_hook_errors_total, named by kHookNames.
enum class RetryLoop::Hook : std::size_t {
  kOnAttempt,
  kOnRetry,
  kOnFinish,
  kRetryIfResult,
  kRetryOn,
  kRetryAfter,
  kAllowRetry
};
inline constexpr std::array<std::string_view, 7> kHookNames = {
    "on_attempt", "on_retry",    "on_finish",  "retry_if_result",
    "retry_on",   "retry_after", "allow_retry"};
static_assert(static_cast<std::size_t>(RetryLoop::Hook::kAllowRetry) + 1 == kHookNames.size());

// One job type's series.
struct RetrySeries {
  metrics::Counter* attempts = nullptr;
  metrics::Counter* retries = nullptr;
  std::array<metrics::Counter*, kGaveUpReasons.size()> gave_up{};
  std::array<metrics::Counter*, kHookNames.size()> hook_errors{};

  void give_up(GaveUp reason) const { gave_up[static_cast<std::size_t>(reason)]->inc(); }
  void hook_failed(RetryLoop::Hook hook) const {
    hook_errors[static_cast<std::size_t>(hook)]->inc();
  }
};

struct RetryInstruments::Shared {
  explicit Shared(metrics::Registry& registry);

  metrics::Registry& registry;
  metrics::Family<metrics::Counter>& attempts;
  metrics::Family<metrics::Counter>& retries;
  metrics::Family<metrics::Counter>& gave_up;
  metrics::Family<metrics::Counter>& hook_errors;
  metrics::BundleCache<RetrySeries> by_job_type;
};

}  // namespace prodsafe::retry
