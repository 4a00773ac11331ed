#include "prodsafe/retry/executor.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "retry_series.hpp"

namespace prodsafe::retry {

namespace {

Clock& pick(Clock* clock) { return clock != nullptr ? *clock : SystemClock::instance(); }

const RetryPolicy& validated(const RetryPolicy& policy) {
  if (policy.max_attempts < 1) {
    throw InvalidArgument(
        fmt::format("RetryPolicy::max_attempts must be at least 1, got {}", policy.max_attempts));
  }
  if (policy.max_total_time.count() < 0) {
    throw InvalidArgument(fmt::format("RetryPolicy::max_total_time must not be negative, got {} ms",
                                      policy.max_total_time.count()));
  }
  if (policy.base_delay.count() <= 0 || policy.base_delay > kMaxBackoffDelay) {
    throw InvalidArgument(
        fmt::format("RetryPolicy::base_delay must be between 1 ms and 24 h, got {} ms",
                    policy.base_delay.count()));
  }
  if (policy.max_delay < policy.base_delay || policy.max_delay > kMaxBackoffDelay) {
    throw InvalidArgument(
        fmt::format("RetryPolicy::max_delay must be between base_delay ({} ms) and 24 h, got {} ms",
                    policy.base_delay.count(), policy.max_delay.count()));
  }
  return policy;
}

}  // namespace

RetryLoop::RetryLoop(const RetryPolicy& policy)
    : policy_(validated(policy)),
      clock_(pick(policy.clock)),
      backoff_(policy.jitter, policy.base_delay, policy.max_delay, policy.seed),
      started_(clock_.steady_now()),
      series_(policy.metrics.shared_->by_job_type.get(policy.job_type)) {
  if (policy_.budget) policy_.budget->record_request();
}

template <class Answer, class Call>
Answer RetryLoop::ask(Hook hook, Answer fallback, Call&& call) const {
  try {
    return call();
  } catch (...) {
    hook_failed(hook, std::current_exception());
  }
  return fallback;
}

template <class Call>
void RetryLoop::notify(Hook hook, Call&& call) const {
  try {
    call();
  } catch (...) {
    hook_failed(hook, std::current_exception());
  }
}

bool RetryLoop::ask_retry_if_result(const std::function<bool()>& retry_if_result) const {
  return ask(Hook::kRetryIfResult, false, retry_if_result);
}

void RetryLoop::hook_failed(Hook hook, const std::exception_ptr& error) const noexcept {
  const auto index = static_cast<std::size_t>(hook);
  series_.hook_failed(hook);
  try {
    std::string what = "an exception not derived from std::exception";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& thrown) {
      what = thrown.what();
    } catch (...) {  // NOLINT(bugprone-empty-catch): `what` already says so
    }
    logger()->warn(
        "retry loop '{}': {} threw on attempt {}; contained, the attempt's outcome stands: {}",
        policy_.job_type, kHookNames[index], attempt_, what);
  } catch (...) {  // NOLINT(bugprone-empty-catch): a failure to log is dropped; it is counted
  }
}

void RetryLoop::end_attempt_span(std::string_view outcome, const std::string& failure) {
  if (!attempt_span_.recording()) return;
  attempt_span_.set_attribute("prodsafe.retry.outcome", outcome);
  if (!failure.empty()) attempt_span_.set_error(failure);
  attempt_span_.end();
}

int RetryLoop::begin_attempt() {
  ++attempt_;
  series_.attempts->inc();
  if (policy_.tracer) {
    if (!loop_span_.recording() && attempt_ == 1) {
      loop_span_ = policy_.tracer->start_span(
          "prodsafe.retry", policy_.trace_parent ? &*policy_.trace_parent : nullptr);
      loop_span_.set_attribute("prodsafe.retry.job_type", policy_.job_type);
    }
    const tracing::TraceContext parent =
        loop_span_.recording() ? loop_span_.context()
                               : policy_.trace_parent.value_or(tracing::TraceContext{});
    attempt_span_ = policy_.tracer->start_span("prodsafe.retry.attempt", &parent);
    attempt_span_.set_attribute("prodsafe.retry.attempt", attempt_);
  }
  if (policy_.hooks.on_attempt) {
    notify(Hook::kOnAttempt, [&] { policy_.hooks.on_attempt(attempt_); });
  }
  return attempt_;
}

bool RetryLoop::retryable(const std::exception& error) {
  bool retryable = true;
  if (policy_.retry_on) {
    retryable = ask(Hook::kRetryOn, false, [&] { return policy_.retry_on(error); });
  } else if (const auto* ours = dynamic_cast<const Error*>(&error)) {
    retryable = ours->retryable();
  }
  if (!retryable) {
    series_.give_up(GaveUp::kNotRetryable);
    end_attempt_span("not_retryable", error.what());
  }
  return retryable;
}

std::optional<milliseconds> RetryLoop::hint(const std::exception& error) const {
  if (policy_.retry_after) {
    return ask(Hook::kRetryAfter, std::optional<milliseconds>{},
               [&] { return policy_.retry_after(error); });
  }
  if (const auto* busy = dynamic_cast<const AlreadyInProgress*>(&error)) return busy->retry_after();
  return std::nullopt;
}

std::optional<milliseconds> RetryLoop::after_failure(const std::string& reason,
                                                     std::optional<milliseconds> hint) {
  if (attempt_ >= policy_.max_attempts) {
    gave_up_because_ = fmt::format("max_attempts ({}) reached", policy_.max_attempts);
    series_.give_up(GaveUp::kExhausted);
    end_attempt_span("gave_up", reason);
    return std::nullopt;
  }
  milliseconds delay = backoff_.next(attempt_ - 1);
  // A hint past the longest delay is clamped to it: the clock takes
  // nanoseconds, and milliseconds::max() would overflow into no wait at all.
  if (hint) delay = std::max(delay, std::min(*hint, kMaxBackoffDelay));
  // elapsed + delay > max_total_time, in whole milliseconds (rounding elapsed
  // up keeps it exact) and without adding to max_total_time, which may be
  // milliseconds::max().
  const auto elapsed = std::chrono::ceil<milliseconds>(clock_.steady_now() - started_);
  if (policy_.max_total_time.count() > 0 && delay > policy_.max_total_time - elapsed) {
    gave_up_because_ =
        fmt::format("max_total_time ({} ms) would pass", policy_.max_total_time.count());
    series_.give_up(GaveUp::kExhausted);
    end_attempt_span("gave_up", reason);
    return std::nullopt;
  }
  if (policy_.budget && !policy_.budget->try_withdraw()) {
    gave_up_because_ = "the retry budget is spent";
    series_.give_up(GaveUp::kBudget);
    end_attempt_span("gave_up", reason);
    return std::nullopt;
  }
  // The gate goes last: a breaker in HALF_OPEN hands out the fleet's probe
  // permit when it says yes, and a loop that then gave up would hold that
  // permit until max_half_open_wait.
  if (policy_.allow_retry &&
      !ask(Hook::kAllowRetry, false, [&] { return policy_.allow_retry(); })) {
    if (policy_.budget) policy_.budget->refund();
    gave_up_because_ = "allow_retry refused (circuit open?)";
    series_.give_up(GaveUp::kBreaker);
    end_attempt_span("gave_up", reason);
    return std::nullopt;
  }
  series_.retries->inc();
  if (attempt_span_.recording()) {
    attempt_span_.set_attribute("prodsafe.retry.delay_ms", delay.count());
    end_attempt_span("retry", reason);
  }
  if (policy_.hooks.on_retry) {
    notify(Hook::kOnRetry, [&] { policy_.hooks.on_retry(attempt_, delay, reason); });
  }
  return delay;
}

void RetryLoop::sleep(milliseconds delay) { clock_.sleep_for(delay); }

void RetryLoop::finish(bool success) {
  if (success) end_attempt_span("ok", "");
  attempt_span_.end();  // a failure's outcome was set where it was decided
  if (loop_span_.recording()) {
    loop_span_.set_attribute("prodsafe.retry.attempts", attempt_)
        .set_attribute("prodsafe.retry.outcome", success ? "ok" : "gave_up");
    if (success) {
      loop_span_.set_ok();
    } else {
      loop_span_.set_error(gave_up_because_.empty() ? "not retryable" : gave_up_because_);
    }
    loop_span_.end();
  }
  if (!policy_.hooks.on_finish) return;
  const auto elapsed = std::chrono::duration_cast<milliseconds>(clock_.steady_now() - started_);
  notify(Hook::kOnFinish, [&] { policy_.hooks.on_finish(attempt_, success, elapsed); });
}

namespace {

// Runs observe()'s parts one by one: a part that throws does not keep the
// others from running. What they threw is thrown once at the end, naming each
// part, for the retry loop to log and count.
class Parts {
 public:
  template <class Part>
  void run(std::string_view name, Part&& part) {
    try {
      part();
    } catch (const std::exception& error) {
      failed(name, error.what());
    } catch (...) {
      failed(name, "an exception not derived from std::exception");
    }
  }
  void throw_failures() const {
    if (!failures_.empty()) throw std::runtime_error("observe(): " + failures_);
  }

 private:
  void failed(std::string_view name, std::string_view what) {
    if (!failures_.empty()) failures_ += "; ";
    failures_ += fmt::format("{}: {}", name, what);
  }
  std::string failures_;
};

}  // namespace

RetryHooks observe(RetryObservers observers) {
  auto shared = std::make_shared<RetryObservers>(std::move(observers));
  RetryHooks hooks;
  hooks.on_attempt = [shared](int attempt) {
    if (shared->tracker == nullptr) return;
    Parts parts;
    parts.run("tracker", [&] {
      if (attempt == 1) {
        shared->tracker->start_window(shared->job_id, shared->job_type);
      } else {
        shared->tracker->increment_attempt(shared->job_id);
      }
    });
    parts.throw_failures();
  };
  hooks.on_retry = [shared](int, milliseconds, const std::string&) {
    if (shared->spikes == nullptr) return;
    Parts parts;
    std::optional<SpikeAlert> alert;
    parts.run("spikes", [&] { alert = shared->spikes->record_retry(); });
    if (alert && shared->on_spike) parts.run("on_spike", [&] { shared->on_spike(*alert); });
    if (alert && shared->alert_hooks) {
      parts.run("alert_hooks", [&] {
        shared->alert_hooks->fire(
            alerts::kRetrySpike, alert->message,
            {.job_type = shared->job_type,
             .timestamp = alert->at,
             .instance = alerts::this_instance(),
             .extra = {{"count", std::to_string(alert->count)},
                       {"baseline", fmt::format("{}", alert->baseline)},
                       {"multiplier", fmt::format("{}", alert->multiplier)},
                       {"window_ms", std::to_string(alert->window.count())}}});
      });
    }
    parts.throw_failures();
  };
  hooks.on_finish = [shared](int attempts, bool success, milliseconds elapsed) {
    Parts parts;
    if (shared->histogram != nullptr) {
      parts.run("histogram", [&] { shared->histogram->record(attempts); });
    }
    std::optional<RetryWindow> window;
    if (shared->tracker != nullptr) {
      parts.run("tracker",
                [&] { window = shared->tracker->close_window(shared->job_id, success); });
    }
    if (shared->anomalies != nullptr) {
      if (!window) {
        Clock& clock = pick(shared->clock);
        const auto now = clock.system_now();
        window = RetryWindow{shared->job_id, shared->job_type, now - elapsed, now,
                             attempts,       elapsed,          success};
      }
      std::vector<Anomaly> found;
      parts.run("anomalies", [&] { found = shared->anomalies->record_window(*window); });
      if (shared->on_anomaly) {
        for (const Anomaly& anomaly : found) {
          parts.run("on_anomaly", [&] { shared->on_anomaly(anomaly); });
        }
      }
      if (shared->alert_hooks) {
        for (const Anomaly& anomaly : found) {
          parts.run("alert_hooks", [&] {
            shared->alert_hooks->fire(
                alerts::kRetryAnomaly, anomaly.message,
                {.job_type = anomaly.job_type,
                 .timestamp = pick(shared->clock).system_now(),
                 .instance = alerts::this_instance(),
                 .extra = {{"anomaly", std::string(to_string(anomaly.type))},
                           {"job_id", anomaly.job_id},
                           {"value", fmt::format("{}", anomaly.value)},
                           {"threshold", fmt::format("{}", anomaly.threshold)}}});
          });
        }
      }
    }
    parts.throw_failures();
  };
  return hooks;
}

}  // namespace prodsafe::retry
