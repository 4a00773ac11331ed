#include "prodsafe/alerts/webhook_dispatcher.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <bit>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#include <httplib.h>

#include "prodsafe/alerts/webhook.hpp"
#include "prodsafe/core/clock.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "webhook_url.hpp"

namespace prodsafe::alerts {
namespace {

enum class Outcome { kDelivered, kRetryable, kFinal };

struct Attempt {
  Outcome outcome = Outcome::kFinal;
  std::string detail{};  // "HTTP 503", "Read", ...: never a URL or a body
};

bool retryable(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection:
    case httplib::Error::ConnectionTimeout:
    case httplib::Error::Read:
    case httplib::Error::Write:
    case httplib::Error::SSLConnection:
    case httplib::Error::Unknown:
      return true;
    default:  // Canceled, certificate problems, ...: repeating cannot help
      return false;
  }
}

Attempt classify(int status) {
  const std::string detail = "HTTP " + std::to_string(status);
  if (status >= 200 && status < 300) return {Outcome::kDelivered, detail};
  if (status >= 500 || status == 429) return {Outcome::kRetryable, detail};
  return {Outcome::kFinal, detail};
}

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
  if (options.drain_timeout.count() < 0) {
    throw InvalidArgument("WebhookOptions::drain_timeout must be >= 0");
  }
}

}  // namespace

struct WebhookDispatcher::State {
  explicit State(WebhookOptions opts)
      : options(std::move(opts)),
        clock(options.clock != nullptr ? *options.clock : SystemClock::instance()) {}

  void run();
  void deliver(const WebhookRequest& request);
  Attempt attempt(const detail::WebhookUrl& url, const WebhookRequest& request);
  bool wait_before_retry(std::chrono::milliseconds delay);  // false: shutting down
  [[nodiscard]] bool idle_locked() const { return queue.empty() && !in_flight; }

  const WebhookOptions options;
  Clock& clock;

  std::mutex mutex;
  std::condition_variable wake;  // the worker: a request, or shutdown
  std::condition_variable idle;  // flush() and the destructor
  std::deque<WebhookRequest> queue;
  bool in_flight = false;
  bool closing = false;                    // refuse new requests
  bool abandon = false;                    // no further attempts; the worker exits
  httplib::ClientImpl* current = nullptr;  // the attempt in flight, to cancel it

  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> retried{0};
  std::thread worker;
};

void WebhookDispatcher::State::run() {
  block_sigpipe_in_this_thread();
  for (;;) {
    WebhookRequest request;
    {
      std::unique_lock lock(mutex);
      wake.wait(lock, [this] { return abandon || !queue.empty(); });
      if (abandon) return;
      request = std::move(queue.front());
      queue.pop_front();
      in_flight = true;
    }
    try {
      deliver(request);
    } catch (const std::exception& error) {
      failed.fetch_add(1);
      logger()->warn("webhook {} to {} failed: {}", request.sink, redact_webhook_url(request.url),
                     error.what());
    }
    {
      std::lock_guard lock(mutex);
      in_flight = false;
    }
    idle.notify_all();
  }
}

void WebhookDispatcher::State::deliver(const WebhookRequest& request) {
  const std::string redacted = redact_webhook_url(request.url);
  detail::WebhookUrl url;
  try {
    url = detail::parse_webhook_url(request.url);
  } catch (const InvalidArgument& error) {
    failed.fetch_add(1);
    logger()->warn("webhook {} not sent: {}", request.sink, error.what());
    return;
  }
  std::chrono::milliseconds delay = options.retry_delay;
  for (int attempt_number = 1;; ++attempt_number) {
    const Attempt result = attempt(url, request);
    if (result.outcome == Outcome::kDelivered) {
      delivered.fetch_add(1);
      logger()->debug("webhook {} delivered to {} ({}, attempt {})", request.sink, redacted,
                      result.detail, attempt_number);
      return;
    }
    if (result.outcome == Outcome::kFinal || attempt_number >= options.max_attempts) {
      failed.fetch_add(1);
      logger()->warn("webhook {} to {} failed after {} attempt(s): {}", request.sink, redacted,
                     attempt_number, result.detail);
      return;
    }
    retried.fetch_add(1);
    logger()->info("webhook {} to {}: {} on attempt {}, retrying in {} ms", request.sink, redacted,
                   result.detail, attempt_number, delay.count());
    if (!wait_before_retry(delay)) {
      failed.fetch_add(1);
      logger()->warn("webhook {} to {} failed: shut down before attempt {} ({} before)",
                     request.sink, redacted, attempt_number + 1, result.detail);
      return;
    }
    delay *= 2;
  }
}

Attempt WebhookDispatcher::State::attempt(const detail::WebhookUrl& url,
                                          const WebhookRequest& request) {
  std::unique_ptr<httplib::ClientImpl> client;
  if (url.https) {
    auto tls = std::make_unique<httplib::SSLClient>(url.host, url.port);
    if (!options.ca_cert_path.empty()) tls->set_ca_cert_path(options.ca_cert_path);
    tls->enable_server_certificate_verification(true);
    client = std::move(tls);
  } else {
    client = std::make_unique<httplib::ClientImpl>(url.host, url.port);
  }
  if (!client->is_valid()) return {Outcome::kFinal, "TLS client could not be set up"};
  client->set_connection_timeout(options.timeout);
  client->set_read_timeout(options.timeout);
  client->set_write_timeout(options.timeout);
  client->set_keep_alive(false);
  client->set_follow_location(false);
  {
    std::lock_guard lock(mutex);
    if (abandon) return {Outcome::kFinal, "shut down"};
    current = client.get();
  }
  const httplib::Headers headers{{"User-Agent", "prodsafe"}};
  httplib::Result result = client->Post(url.target, headers, request.body, request.content_type);
  {
    std::lock_guard lock(mutex);
    current = nullptr;
  }
  if (!result) {
    const httplib::Error error = result.error();
    return {retryable(error) ? Outcome::kRetryable : Outcome::kFinal,
            "no answer (" + httplib::to_string(error) + ")"};
  }
  return classify(result->status);
}

bool WebhookDispatcher::State::wait_before_retry(std::chrono::milliseconds delay) {
  if (options.clock != nullptr) {
    clock.sleep_for(delay);
    std::lock_guard lock(mutex);
    return !abandon;
  }
  std::unique_lock lock(mutex);
  return !wake.wait_for(lock, delay, [this] { return abandon; });
}

WebhookDispatcher::WebhookDispatcher(WebhookOptions options) {
  check(options);
  state_ = std::make_unique<State>(std::move(options));
  state_->worker = std::thread([state = state_.get()] { state->run(); });
}

WebhookDispatcher::~WebhookDispatcher() {
  State& state = *state_;
  std::size_t left = 0;
  {
    std::unique_lock lock(state.mutex);
    state.closing = true;
    state.idle.wait_for(lock, state.options.drain_timeout, [&] { return state.idle_locked(); });
    state.abandon = true;
    left = state.queue.size();
    state.queue.clear();
    if (state.current != nullptr) state.current->stop();
  }
  state.wake.notify_all();
  state.worker.join();
  if (left != 0) {
    state.dropped.fetch_add(left);
    logger()->warn("webhook dispatcher shut down with {} undelivered alert(s) after waiting {} ms",
                   left, state.options.drain_timeout.count());
  }
}

bool WebhookDispatcher::enqueue(WebhookRequest request) {
  State& state = *state_;
  bool queued = false;
  {
    std::lock_guard lock(state.mutex);
    if (!state.closing && state.queue.size() < state.options.queue_capacity) {
      state.queue.push_back(std::move(request));
      queued = true;
    }
  }
  if (queued) {
    state.wake.notify_one();
    return true;
  }
  // A full queue means a flood: log the 1st, 2nd, 4th, 8th... drop, not each.
  const std::uint64_t dropped = state.dropped.fetch_add(1) + 1;
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
