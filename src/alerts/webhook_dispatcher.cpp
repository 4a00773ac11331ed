#include "prodsafe/alerts/webhook_dispatcher.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "attempt_watchdog.hpp"
#include "log_excerpt.hpp"
#include "prodsafe/alerts/webhook.hpp"
#include "prodsafe/core/backoff.hpp"
#include "prodsafe/core/clock.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "retry_after.hpp"
#include "webhook_attempt.hpp"
#include "webhook_url.hpp"

namespace prodsafe::alerts {
namespace {

using detail::AttemptResult;
using detail::Outcome;
using std::chrono::milliseconds;

// A peer that resets the connection mid-write raises SIGPIPE, which would
// kill the process; blocked in this thread, the write fails with EPIPE instead.
void block_sigpipe_in_this_thread() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void check(const WebhookOptions& options) {
  if (options.queue_capacity == 0) throw InvalidArgument("WebhookOptions::queue_capacity is 0");
  if (options.timeout.count() <= 0) throw InvalidArgument("WebhookOptions::timeout must be > 0");
  if (options.max_attempts < 1) throw InvalidArgument("WebhookOptions::max_attempts must be >= 1");
  if (options.retry_delay.count() < 0) {
    throw InvalidArgument("WebhookOptions::retry_delay must be >= 0");
  }
  if (options.max_retry_after.count() < 0) {
    throw InvalidArgument("WebhookOptions::max_retry_after must be >= 0");
  }
  if (options.drain_timeout.count() < 0) {
    throw InvalidArgument("WebhookOptions::drain_timeout must be >= 0");
  }
}

// scheme://host:port, or the URL itself when it does not parse.
std::string endpoint_of(const std::string& url) {
  try {
    const detail::WebhookUrl parsed = detail::parse_webhook_url(url);
    return (parsed.https ? "https://" : "http://") + parsed.host + ":" +
           std::to_string(parsed.port);
  } catch (const InvalidArgument&) {
    return url;
  }
}

// A request in the queue, with what its earlier attempts left.
struct Queued {
  WebhookRequest request;
  std::string endpoint;
  int attempts = 0;                // made so far
  Clock::SteadyTime not_before{};  // no attempt before (the dispatcher's clock)
  std::string last_failure{};      // of the latest attempt
};

// One sink's series, made at its first request.
struct SinkSeries {
  metrics::Counter* delivered = nullptr;
  metrics::Counter* failed = nullptr;
  metrics::Counter* dropped = nullptr;
  metrics::Counter* retried = nullptr;
};

}  // namespace

struct WebhookDispatcher::State {
  explicit State(WebhookOptions opts)
      : options(std::move(opts)),
        clock(options.clock != nullptr ? *options.clock : SystemClock::instance()),
        registry(options.metrics != nullptr ? *options.metrics : metrics::default_registry()) {
    // No jitter: one worker sends one request at a time, with no crowd to
    // spread apart. A retry_delay over a day waits a day.
    if (options.retry_delay.count() > 0) {
      retry_backoff.emplace(Jitter::kNone, std::min(options.retry_delay, kMaxBackoffDelay),
                            kMaxBackoffDelay, 1);
    }
  }

  void run();
  // The next request the worker may attempt, taken out of the queue; nullopt
  // when abandoning.
  std::optional<Queued> next();
  void attempt(Queued item);
  [[nodiscard]] bool idle_locked() const { return queue.empty() && !in_flight; }
  SinkSeries& series_locked(const std::string& sink);
  void count_failed(const std::string& sink);
  void count_dropped(const std::string& sink, std::uint64_t count = 1);

  const WebhookOptions options;
  Clock& clock;
  metrics::Registry& registry;
  detail::AttemptWatchdog watchdog;
  std::stop_source stop;  // requested at shutdown: ends a DNS lookup in progress
  // The waits between attempts: retry_delay doubling up to a day; empty when
  // retry_delay is 0. Used by the worker thread only.
  std::optional<Backoff> retry_backoff;

  std::mutex mutex;              // guards every field below up to the counters
  std::condition_variable wake;  // the worker: a request, or shutdown
  std::condition_variable idle;  // flush() and the destructor
  std::deque<Queued> queue;      // in arrival order; retries keep their place
  bool in_flight = false;
  bool closing = false;  // refuse new requests
  bool abandon = false;  // no further attempts; the worker exits
  std::map<std::string, SinkSeries, std::less<>> sinks;

  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> retried{0};
  std::thread worker;
};

SinkSeries& WebhookDispatcher::State::series_locked(const std::string& sink) {
  const auto found = sinks.find(sink);
  if (found != sinks.end()) return found->second;
  auto& requests =
      registry.counter("prodsafe_alerts_webhook_requests_total",
                       "Webhook requests by how they ended: delivered, failed (a "
                       "final answer, attempts exhausted) or dropped (never attempted).",
                       {"sink", "outcome"});
  SinkSeries series{
      .delivered = &requests.labels({sink, "delivered"}),
      .failed = &requests.labels({sink, "failed"}),
      .dropped = &requests.labels({sink, "dropped"}),
      .retried = &registry
                      .counter("prodsafe_alerts_webhook_retries_total",
                               "Webhook attempts repeated after a retryable failure.", {"sink"})
                      .labels({sink})};
  return sinks.emplace(sink, series).first->second;
}

void WebhookDispatcher::State::count_failed(const std::string& sink) {
  failed.fetch_add(1);
  std::lock_guard lock(mutex);
  series_locked(sink).failed->inc();
}

void WebhookDispatcher::State::count_dropped(const std::string& sink, std::uint64_t count) {
  dropped.fetch_add(count);
  std::lock_guard lock(mutex);
  series_locked(sink).dropped->inc(static_cast<double>(count));
}

void WebhookDispatcher::State::run() {
  block_sigpipe_in_this_thread();
  for (;;) {
    std::optional<Queued> item = next();
    if (!item) return;
    const std::string sink = item->request.sink;
    try {
      attempt(std::move(*item));
    } catch (const std::exception& error) {
      count_failed(sink);
      logger()->warn("webhook {} failed: {}", sink, error.what());
      std::lock_guard lock(mutex);
      in_flight = false;
    }
    idle.notify_all();
  }
}

std::optional<Queued> WebhookDispatcher::State::next() {
  std::unique_lock lock(mutex);
  for (;;) {
    if (abandon) return std::nullopt;
    // The first request of each endpoint is the only one of it that may go;
    // of those, the first whose wait is over.
    const Clock::SteadyTime now = clock.steady_now();
    std::optional<Clock::SteadyTime> earliest;
    std::set<std::string_view> seen;
    for (auto it = queue.begin(); it != queue.end(); ++it) {
      if (!seen.insert(it->endpoint).second) continue;
      if (it->not_before <= now) {
        Queued item = std::move(*it);
        queue.erase(it);
        in_flight = true;
        return item;
      }
      earliest = std::min(earliest.value_or(it->not_before), it->not_before);
    }
    if (!earliest) {
      wake.wait(lock);
    } else if (options.clock != nullptr) {
      lock.unlock();
      clock.sleep_for(*earliest - now);
      lock.lock();
    } else {
      wake.wait_until(lock, *earliest);
    }
  }
}

void WebhookDispatcher::State::attempt(Queued item) {
  const WebhookRequest& request = item.request;
  const std::string redacted = redact_webhook_url(request.url);
  const auto finish = [&](std::atomic<std::uint64_t>& counter,
                          metrics::Counter* SinkSeries::*series) {
    counter.fetch_add(1);
    std::lock_guard lock(mutex);
    (series_locked(request.sink).*series)->inc();
    in_flight = false;
  };
  detail::WebhookUrl url;
  try {
    url = detail::parse_webhook_url(request.url);
  } catch (const InvalidArgument& error) {
    logger()->warn("webhook {} not sent: {}", request.sink, error.what());
    finish(failed, &SinkSeries::failed);
    return;
  }
  ++item.attempts;
  const AttemptResult result = detail::post_once(url, request, options, watchdog, stop.get_token());
  if (result.outcome == Outcome::kDelivered) {
    logger()->debug("webhook {} delivered to {} ({}, attempt {})", request.sink, redacted,
                    result.detail, item.attempts);
    finish(delivered, &SinkSeries::delivered);
    return;
  }
  std::string answer;
  if (result.status != 0 && !result.body.empty()) {
    std::vector<std::string> secrets = detail::url_secrets(request.url);
    secrets.insert(secrets.end(), request.secrets.begin(), request.secrets.end());
    answer = ", answer: " + detail::log_excerpt(result.body, result.body_truncated, secrets);
  }
  bool shutting_down = false;
  {
    std::lock_guard lock(mutex);
    shutting_down = abandon;
  }
  if (result.outcome == Outcome::kFinal || item.attempts >= options.max_attempts || shutting_down) {
    logger()->warn("webhook {} to {} failed after {} attempt(s): {}{}{}", request.sink, redacted,
                   item.attempts, result.detail, shutting_down ? " (shutting down)" : "", answer);
    finish(failed, &SinkSeries::failed);
    return;
  }

  // Retry: after the doubling delay, or what Retry-After asks (up to
  // max_retry_after) when that is longer.
  milliseconds wait = retry_backoff ? retry_backoff->next(item.attempts - 1) : milliseconds(0);
  std::string asked;
  if (result.retry_after && options.max_retry_after.count() > 0) {
    if (const auto retry_after =
            detail::parse_retry_after(*result.retry_after, clock.system_now())) {
      wait = std::max(wait, std::min(*retry_after, options.max_retry_after));
      asked = fmt::format(" (Retry-After {} ms{})", retry_after->count(),
                          *retry_after > options.max_retry_after ? ", capped" : "");
    }
  }
  item.not_before = clock.steady_now() + wait;
  item.last_failure = result.detail;
  retried.fetch_add(1);
  logger()->info("webhook {} to {}: {} on attempt {}, retrying in {} ms{}{}", request.sink,
                 redacted, result.detail, item.attempts, wait.count(), asked, answer);
  std::lock_guard lock(mutex);
  series_locked(request.sink).retried->inc();
  if (abandon) {  // the destructor has emptied the queue
    failed.fetch_add(1);
    series_locked(request.sink).failed->inc();
    logger()->warn("webhook {} to {} failed: shut down before attempt {} ({} before)", request.sink,
                   redacted, item.attempts + 1, item.last_failure);
  } else {
    // First in the queue: it stays ahead of its endpoint's later requests.
    queue.push_front(std::move(item));
  }
  in_flight = false;
}

WebhookDispatcher::WebhookDispatcher(WebhookOptions options) {
  check(options);
  state_ = std::make_unique<State>(std::move(options));
  state_->worker = std::thread([state = state_.get()] { state->run(); });
}

WebhookDispatcher::~WebhookDispatcher() {
  State& state = *state_;
  std::map<std::string, std::uint64_t> never_attempted;  // by sink
  std::vector<Queued> waiting_for_retry;
  {
    std::unique_lock lock(state.mutex);
    state.closing = true;
    state.idle.wait_for(lock, state.options.drain_timeout, [&] { return state.idle_locked(); });
    state.abandon = true;
    for (auto& item : state.queue) {
      if (item.attempts == 0) {
        ++never_attempted[item.request.sink];
      } else {
        waiting_for_retry.push_back(std::move(item));
      }
    }
    state.queue.clear();
  }
  state.stop.request_stop();
  state.watchdog.cancel();
  state.wake.notify_all();
  state.worker.join();
  std::uint64_t left = 0;
  for (const auto& [sink, count] : never_attempted) {
    state.count_dropped(sink, count);
    left += count;
  }
  if (left != 0) {
    logger()->warn("webhook dispatcher shut down with {} undelivered alert(s) after waiting {} ms",
                   left, state.options.drain_timeout.count());
  }
  for (const auto& item : waiting_for_retry) {
    state.count_failed(item.request.sink);
    logger()->warn("webhook {} to {} failed: shut down before attempt {} ({} before)",
                   item.request.sink, redact_webhook_url(item.request.url), item.attempts + 1,
                   item.last_failure);
  }
}

bool WebhookDispatcher::enqueue(WebhookRequest request) {
  State& state = *state_;
  bool queued = false;
  std::string endpoint = endpoint_of(request.url);
  {
    std::lock_guard lock(state.mutex);
    if (!state.closing && state.queue.size() < state.options.queue_capacity) {
      state.queue.push_back({.request = std::move(request), .endpoint = std::move(endpoint)});
      queued = true;
    }
  }
  if (queued) {
    state.wake.notify_one();
    return true;
  }
  state.count_dropped(request.sink);
  // A full queue means a flood: log the 1st, 2nd, 4th, 8th... drop, not each.
  const std::uint64_t dropped = state.dropped.load();
  if (std::has_single_bit(dropped)) {
    logger()->warn(
        "webhook queue full or closed (capacity {}): dropped {} alert(s) so far, "
        "the latest for {} to {}",
        state.options.queue_capacity, dropped, request.sink, redact_webhook_url(request.url));
  }
  return false;
}

bool WebhookDispatcher::flush(std::chrono::milliseconds timeout) {
  State& state = *state_;
  std::unique_lock lock(state.mutex);
  return state.idle.wait_for(lock, timeout, [&] { return state.idle_locked(); });
}

std::uint64_t WebhookDispatcher::delivered() const noexcept { return state_->delivered.load(); }
std::uint64_t WebhookDispatcher::failed() const noexcept { return state_->failed.load(); }
std::uint64_t WebhookDispatcher::dropped() const noexcept { return state_->dropped.load(); }
std::uint64_t WebhookDispatcher::retried() const noexcept { return state_->retried.load(); }

std::size_t WebhookDispatcher::pending() const {
  std::lock_guard lock(state_->mutex);
  return state_->queue.size() + (state_->in_flight ? 1 : 0);
}

const WebhookOptions& WebhookDispatcher::options() const noexcept { return state_->options; }
Clock& WebhookDispatcher::clock() const noexcept { return state_->clock; }

}  // namespace prodsafe::alerts
