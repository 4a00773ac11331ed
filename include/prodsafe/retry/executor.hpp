// The retry executor: retry::run(policy, fn) calls fn until it succeeds, with
// capped exponential backoff and jitter, within a total time, a shared retry
// budget and an optional gate (a circuit breaker), telling hooks about every
// attempt so the tracker, histogram and detectors can observe it.
//
//   auto fill = retry::run({.max_attempts = 5, .budget = exchange_budget},
//                          [&](int attempt) { return exchange.place(order); });
//
// Which failures are retried: by default a prodsafe::Error when retryable()
// says so, and any other exception; set retry_on to decide yourself. A result
// can ask for a retry too (run_if). When retries end, the last exception is
// rethrown (or, for run_if, the last result returned).
//
// Hooks and policy callbacks never decide an attempt's outcome: only fn's own
// exception is taken for a failed attempt. What a hook, retry_on,
// retry_after, allow_retry or retry_if_result throws is logged, counted in
// prodsafe_retry_hook_errors_total{job_type, hook} and contained; each
// callback's comment says what stands in for its answer.
//
// Thread safety: run() is reentrant; a policy may be shared by threads (its
// budget, hooks and gate must then be thread-safe, as prodsafe's are).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "prodsafe/alerts/alert_hooks.hpp"
#include "prodsafe/core/backoff.hpp"
#include "prodsafe/core/clock.hpp"
#include "prodsafe/retry/anomaly_detector.hpp"
#include "prodsafe/retry/histogram.hpp"
#include "prodsafe/retry/retry_budget.hpp"
#include "prodsafe/retry/retry_instruments.hpp"
#include "prodsafe/retry/retry_window_tracker.hpp"
#include "prodsafe/retry/spike_detector.hpp"
#include "prodsafe/tracing/tracer.hpp"

namespace prodsafe::retry {

using std::chrono::milliseconds;

// What a hook throws is contained (see the file comment): the loop goes on as
// if it had returned.
struct RetryHooks {
  // Before each attempt; attempts count from 1.
  std::function<void(int attempt)> on_attempt{};
  // After a failed attempt that will be retried, before sleeping `delay`.
  std::function<void(int attempt, milliseconds delay, const std::string& reason)> on_retry{};
  // Once, when the loop ends.
  std::function<void(int attempts, bool success, milliseconds elapsed)> on_finish{};
};

struct RetryPolicy {
  // Attempts in all, the first included; 1 means no retries. Default: 3.
  int max_attempts = 3;
  // Backoff: base and cap of the delay, 1 ms <= base_delay <= max_delay <=
  // 24 h (kMaxBackoffDelay). Defaults: 100 ms and 10 s.
  milliseconds base_delay = milliseconds(100);
  milliseconds max_delay = std::chrono::seconds(10);
  // Default: kFull (AWS's recommendation for competing clients).
  Jitter jitter = Jitter::kFull;
  // No retry whose delay would end past this much time since the first
  // attempt. Must not be negative; milliseconds::max() is as good as no
  // limit. Default: 0, no limit.
  milliseconds max_total_time = milliseconds(0);
  // Whether a failure may be retried. Default: prodsafe::Error::retryable()
  // for prodsafe errors, true for any other exception. If it throws, the
  // failure is not retried.
  std::function<bool(const std::exception&)> retry_on{};
  // A server's "retry after" hint: the delay is at least this long (a hint
  // over 24 h, kMaxBackoffDelay, counts as 24 h). Default:
  // AlreadyInProgress::retry_after() for prodsafe's AlreadyInProgress. If it
  // throws, there is no hint.
  std::function<std::optional<milliseconds>(const std::exception&)> retry_after{};
  // Shared by every caller of one dependency. Default: none.
  std::shared_ptr<RetryBudget> budget{};
  // Asked before each retry, after every other check (max_attempts,
  // max_total_time, the budget) has let it through, since a breaker in
  // HALF_OPEN hands out its probe permit on yes: a yes means the retry is
  // made. False stops retrying and gives the budget its retry back (e.g. a
  // circuit breaker's gate()); so does throwing. Default: none.
  std::function<bool()> allow_retry{};
  RetryHooks hooks{};
  // Default: SystemClock::instance(). ManualClock makes sleeps instant.
  Clock* clock = nullptr;
  // Seed of the jitter's random engine. Default: 0, a random seed.
  std::uint64_t seed = 0;
  // Traces each loop (docs/operations.md "Tracing"): a span "prodsafe.retry"
  // (attributes prodsafe.retry.job_type, prodsafe.retry.attempts,
  // prodsafe.retry.outcome) with a child "prodsafe.retry.attempt" per attempt
  // (prodsafe.retry.attempt, prodsafe.retry.outcome: ok, retry, gave_up or
  // not_retryable, prodsafe.retry.delay_ms, and the failure as an error
  // status). Default: null, no spans.
  std::shared_ptr<tracing::Tracer> tracer{};
  // The parent of the loop's span (a caller's span, or a traceparent parsed
  // with tracing::parse_traceparent). Default: none, a new trace.
  std::optional<tracing::TraceContext> trace_parent{};
  // The job_type label of the loop's instruments (prodsafe_retry_attempts_total,
  // _retries_total, _gave_up_total, _hook_errors_total; docs/metrics.md).
  // Keep it to a small set of names. Default: "default".
  std::string job_type = "default";
  // Where they go: `.metrics = &registry` makes the instruments in that
  // registry, which the policy (and its copies) then hold; see
  // retry_instruments.hpp. The registry must outlive every loop run with this
  // policy. Default: metrics::default_registry()'s.
  RetryInstruments metrics{};
};

struct RetrySeries;

// The loop's bookkeeping, shared by every instantiation of run(); in this
// header only because run_if() is a template.
class RetryLoop {
 public:
  // Throws InvalidArgument when max_attempts < 1, max_total_time is negative
  // or the delays are out of their range (see RetryPolicy).
  explicit RetryLoop(const RetryPolicy& policy);

  // Each of these calls its hooks and callbacks contained (see the file
  // comment).
  int begin_attempt();
  // The delay before the next attempt, or nullopt to give up. Checks, in
  // order: max_attempts, max_total_time, the budget, then allow_retry.
  std::optional<milliseconds> after_failure(const std::string& reason,
                                            std::optional<milliseconds> hint);
  void sleep(milliseconds delay);
  void finish(bool success);
  // Whether `error` may be retried (counted as given up when not).
  [[nodiscard]] bool retryable(const std::exception& error);
  [[nodiscard]] std::optional<milliseconds> hint(const std::exception& error) const;
  // retry_if_result(result), or false (the result is final) when it throws.
  template <class Predicate, class Value>
  [[nodiscard]] bool result_asks_for_retry(Predicate& retry_if_result, const Value& result) const {
    return ask_retry_if_result([&] { return static_cast<bool>(retry_if_result(result)); });
  }
  // Why the last after_failure() gave up ("max_attempts reached", ...).
  [[nodiscard]] const std::string& gave_up_because() const noexcept { return gave_up_because_; }

  // Which callback a loop called (retry_series.hpp).
  enum class Hook : std::size_t;

 private:
  [[nodiscard]] bool ask_retry_if_result(const std::function<bool()>& retry_if_result) const;
  // Calls a callback; when it throws, logs and counts that and answers
  // `fallback`. notify() does the same for a hook without an answer.
  template <class Answer, class Call>
  Answer ask(Hook hook, Answer fallback, Call&& call) const;
  template <class Call>
  void notify(Hook hook, Call&& call) const;
  void hook_failed(Hook hook, const std::exception_ptr& error) const noexcept;

  const RetryPolicy& policy_;
  Clock& clock_;
  Backoff backoff_;
  Clock::SteadyTime started_;
  int attempt_ = 0;
  std::string gave_up_because_;
  // With policy.tracer: the loop's span and the current attempt's.
  tracing::Span loop_span_;
  tracing::Span attempt_span_;
  void end_attempt_span(std::string_view outcome, const std::string& failure);
  // The policy's job type's series (RetryInstruments::Shared::by_job_type).
  const RetrySeries& series_;
};

namespace detail {
template <class Fn>
decltype(auto) call_attempt(Fn& fn, int attempt) {
  if constexpr (std::is_invocable_v<Fn&, int>) {
    return fn(attempt);
  } else {
    return fn();
  }
}
}  // namespace detail

// Calls fn (as fn(int attempt) or fn()) until it returns without throwing, or
// until `retry_if_result(result)` is false; see the file comment. If
// retry_if_result throws, the result is final: it is returned and the loop
// ends as a success (the attempt returned).
template <class Fn, class Predicate>
auto run_if(const RetryPolicy& policy, Fn&& fn, Predicate&& retry_if_result) {
  using Result = std::decay_t<decltype(detail::call_attempt(fn, 1))>;
  RetryLoop loop(policy);
  for (;;) {
    const int attempt = loop.begin_attempt();
    std::optional<milliseconds> delay;
    std::optional<Result> result;
    // Only the attempt runs inside the try: nothing the loop or a hook does
    // afterwards can pass for the attempt's failure and run it again.
    try {
      result.emplace(detail::call_attempt(fn, attempt));
    } catch (const std::exception& error) {
      if (!loop.retryable(error)) {
        loop.finish(false);
        throw;
      }
      delay = loop.after_failure(error.what(), loop.hint(error));
      if (!delay) {
        loop.finish(false);
        throw;
      }
    }
    if (result) {
      if (!loop.result_asks_for_retry(retry_if_result, std::as_const(*result))) {
        loop.finish(true);
        return std::move(*result);
      }
      delay = loop.after_failure("the result asked for a retry", std::nullopt);
      if (!delay) {
        loop.finish(false);
        return std::move(*result);
      }
    }
    loop.sleep(*delay);
  }
}

template <class Fn>
auto run(const RetryPolicy& policy, Fn&& fn) {
  using Result = decltype(detail::call_attempt(fn, 1));
  if constexpr (std::is_void_v<Result>) {
    run_if(
        policy,
        [&fn](int attempt) {
          detail::call_attempt(fn, attempt);
          return true;
        },
        [](bool) { return false; });
  } else {
    return run_if(policy, std::forward<Fn>(fn), [](const auto&) { return false; });
  }
}

// What observe() feeds. Every member is optional.
struct RetryObservers {
  // Records each finished loop's attempts.
  RetryHistogram* histogram = nullptr;
  // Counts each retry; on_spike gets its alerts.
  RetrySpikeDetector* spikes = nullptr;
  std::function<void(const SpikeAlert&)> on_spike{};
  // Keeps the loop's window in the (shared) tracker under job_id.
  RetryWindowTracker* tracker = nullptr;
  // Gets each finished window (from the tracker, else from the loop itself);
  // on_anomaly gets what it finds.
  RetryAnomalyDetector* anomalies = nullptr;
  std::function<void(const Anomaly&)> on_anomaly{};
  // Also fires each spike (alerts::kRetrySpike) and anomaly
  // (alerts::kRetryAnomaly) into these hooks, with the job type and the
  // figures in AlertContext::extra: with a RedisAlertStream hook, the fleet's
  // alert history and `prodsafe dashboard` show them.
  std::shared_ptr<alerts::AlertHooks> alert_hooks{};
  std::string job_id{};
  std::string job_type = "default";
  // For windows built without a tracker. Default: SystemClock::instance().
  Clock* clock = nullptr;
};

// Hooks that feed `observers`. Each part (tracker, histogram, spikes,
// on_spike, anomalies, each on_anomaly call) runs even when another threw;
// the hook then throws one std::runtime_error naming every part that failed
// and why, which the retry loop logs and counts (as on_attempt, on_retry or
// on_finish) without changing the attempt's outcome. A tracker whose store
// is down therefore never breaks the loop.
[[nodiscard]] RetryHooks observe(RetryObservers observers);

}  // namespace prodsafe::retry
