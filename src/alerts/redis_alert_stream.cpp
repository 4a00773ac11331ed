#include "prodsafe/alerts/redis_alert_stream.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <condition_variable>
#include <deque>
#include <exception>
#include <iterator>
#include <mutex>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "alert_stream_fields.hpp"
#include "prodsafe/core/clock.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/pipeline.hpp"

namespace prodsafe::alerts {
namespace {

using std::chrono::milliseconds;

void check(const redis::Client* client, const RedisAlertStreamOptions& options) {
  if (client == nullptr) throw InvalidArgument("RedisAlertStream: the redis::Client is null");
  if (options.name.empty()) {
    throw InvalidArgument(
        "RedisAlertStreamOptions::name is empty; leave the default (\"alerts:recent\") or name "
        "the stream");
  }
  if (options.max_entries == 0) {
    throw InvalidArgument("RedisAlertStreamOptions::max_entries is 0; it must be at least 1");
  }
  if (options.queue_capacity == 0) {
    throw InvalidArgument("RedisAlertStreamOptions::queue_capacity is 0; it must be at least 1");
  }
  if (options.max_batch == 0) {
    throw InvalidArgument("RedisAlertStreamOptions::max_batch is 0; it must be at least 1");
  }
  if (options.drain_timeout.count() < 0) {
    throw InvalidArgument("RedisAlertStreamOptions::drain_timeout must be >= 0");
  }
  const redis::Options& redis = client->options();
  const char* forever = redis.pool_checkout_timeout.count() == 0 ? "pool_checkout_timeout"
                        : redis.connect_timeout.count() == 0     ? "connect_timeout"
                        : redis.command_timeout.count() == 0     ? "command_timeout"
                                                                 : nullptr;
  if (forever != nullptr) {
    throw InvalidArgument(fmt::format(
        "RedisAlertStream: the client's redis::Options::{} is 0 (wait forever), so a paused Redis "
        "could hang the stream's writer and its destructor; give the stream a client whose "
        "pool_checkout_timeout, connect_timeout and command_timeout are all positive",
        forever));
  }
}

// One queued alert: its XADD field and value pairs, flattened.
using Fields = std::vector<std::string>;

Fields encode(std::string_view event_type, std::string_view message, const AlertContext& context,
              Clock& clock, const std::string& this_process) {
  Fields fields;
  fields.reserve(2 * (10 + context.extra.size()));
  const auto add = [&fields](std::string_view name, std::string_view value) {
    fields.emplace_back(name);
    fields.emplace_back(value);
  };
  const Clock::SystemTime at =
      context.timestamp == Clock::SystemTime{} ? clock.system_now() : context.timestamp;
  add(detail::kFieldType, event_type);
  add(detail::kFieldMessage, message);
  add(detail::kFieldAtMs,
      std::to_string(std::chrono::floor<milliseconds>(at.time_since_epoch()).count()));
  add(detail::kFieldInstance, context.instance.empty() ? this_process : context.instance);
  if (!context.job_type.empty()) add(detail::kFieldJobType, context.job_type);
  if (!context.state.empty()) add(detail::kFieldState, context.state);
  if (!context.previous_state.empty()) add(detail::kFieldPreviousState, context.previous_state);
  if (context.failure_count != 0) {
    add(detail::kFieldFailureCount, std::to_string(context.failure_count));
  }
  if (context.threshold != 0) add(detail::kFieldThreshold, std::to_string(context.threshold));
  if (context.window.count() != 0) {
    add(detail::kFieldWindowMs, std::to_string(context.window.count()));
  }
  for (const auto& [name, value] : context.extra) {
    add(std::string(detail::kExtraPrefix) + name, value);
  }
  return fields;
}

// Logging must not throw out of append() (noexcept) or end the writer
// thread: a failure to log is dropped.
template <class... Args>
void log_warning(fmt::format_string<Args...> format, Args&&... args) noexcept {
  try {
    logger()->warn(format, std::forward<Args>(args)...);
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing left to report to
  }
}

template <class... Args>
void log_info(fmt::format_string<Args...> format, Args&&... args) noexcept {
  try {
    logger()->info(format, std::forward<Args>(args)...);
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing left to report to
  }
}

}  // namespace

struct RedisAlertStream::State {
  State(std::shared_ptr<redis::Client> redis, RedisAlertStreamOptions opts)
      : options(std::move(opts)),
        client(std::move(redis)),
        key(client->key(options.name)),
        max_entries(std::to_string(options.max_entries)),
        clock(options.clock != nullptr ? *options.clock : SystemClock::instance()),
        this_process(this_instance()),
        pid(::getpid()) {
    metrics::Registry& registry =
        options.metrics != nullptr ? *options.metrics : metrics::default_registry();
    written_series = &registry
                          .counter("prodsafe_alert_stream_written_total",
                                   "Alerts a RedisAlertStream wrote to its Redis stream.")
                          .labels({});
    auto& dropped_family = registry.counter(
        "prodsafe_alert_stream_dropped_total",
        "Alerts a RedisAlertStream did not write, by reason: queue_full, redis_error, "
        "shutdown, forked_child.",
        {"reason"});
    queue_full_series = &dropped_family.labels({"queue_full"});
    redis_error_series = &dropped_family.labels({"redis_error"});
    shutdown_series = &dropped_family.labels({"shutdown"});
    forked_child_series = &dropped_family.labels({"forked_child"});
  }

  void run() noexcept;
  void write(std::vector<Fields>& batch) noexcept;
  // The writer thread's outcome of a batch's alerts.
  void succeeded(std::uint64_t count) noexcept;
  void failed(std::uint64_t count, std::string_view why) noexcept;
  void drop_queue_full() noexcept;
  void drop_forked_child() noexcept;
  [[nodiscard]] bool idle_locked() const { return queue.empty() && in_flight == 0; }

  const RedisAlertStreamOptions options;
  const std::shared_ptr<redis::Client> client;
  const std::string key;
  const std::string max_entries;  // as XADD's MAXLEN argument
  Clock& clock;
  const std::string this_process;  // "host:pid", for alerts without an instance
  const pid_t pid;                 // the process that made the stream (fork)
  metrics::Counter* written_series = nullptr;
  metrics::Counter* queue_full_series = nullptr;
  metrics::Counter* redis_error_series = nullptr;
  metrics::Counter* shutdown_series = nullptr;
  metrics::Counter* forked_child_series = nullptr;

  std::mutex mutex;              // guards queue, in_flight, closing and abandon
  std::condition_variable wake;  // the writer: an alert, or abandon
  std::condition_variable idle;  // flush() and the destructor: the queue written
  std::deque<Fields> queue;
  std::size_t in_flight = 0;  // alerts in the batch being written
  bool closing = false;       // refuse new alerts (the destructor has begun)
  bool abandon = false;       // the writer exits; the queue was emptied

  std::atomic<std::uint64_t> written{0};
  std::atomic<std::uint64_t> dropped_queue_full{0};
  std::atomic<std::uint64_t> dropped_redis_error{0};
  std::atomic<std::uint64_t> dropped_shutdown{0};
  std::atomic<std::uint64_t> dropped_forked_child{0};

  // The writer thread's alone: whether the latest write failed, and how many
  // alerts the failures since the last success cost.
  bool failing = false;
  std::uint64_t lost_in_outage = 0;

  std::thread writer;
};

void RedisAlertStream::State::run() noexcept {
  std::vector<Fields> batch;
  for (;;) {
    {
      std::unique_lock lock(mutex);
      wake.wait(lock, [this] { return abandon || !queue.empty(); });
      if (abandon) return;
      const auto count = static_cast<std::ptrdiff_t>(std::min(options.max_batch, queue.size()));
      batch.assign(std::make_move_iterator(queue.begin()),
                   std::make_move_iterator(queue.begin() + count));
      queue.erase(queue.begin(), queue.begin() + count);
      in_flight = batch.size();
    }
    write(batch);
    batch.clear();
    {
      std::lock_guard lock(mutex);
      in_flight = 0;
    }
    idle.notify_all();
  }
}

void RedisAlertStream::State::write(std::vector<Fields>& batch) noexcept {
  std::vector<redis::Reply> replies;
  try {
    redis::Pipeline pipeline;
    std::vector<std::string_view> args;
    for (const Fields& fields : batch) {
      args.assign({"XADD", key, "MAXLEN"});
      if (!options.exact_trim) args.emplace_back("~");
      args.emplace_back(max_entries);
      args.emplace_back("*");
      args.insert(args.end(), fields.begin(), fields.end());
      pipeline.add(std::span<const std::string_view>(args));
    }
    replies = client->pipeline(pipeline);
  } catch (const std::exception& error) {
    failed(batch.size(), error.what());
    return;
  } catch (...) {
    failed(batch.size(), "an exception not derived from std::exception");
    return;
  }
  std::uint64_t ok = 0;
  std::uint64_t errors = 0;
  std::string_view first_error;
  for (const redis::Reply& reply : replies) {
    if (!reply.is_error()) {
      ++ok;
    } else if (errors++ == 0) {
      first_error = reply.error_message();
    }
  }
  if (replies.size() < batch.size()) {  // not expected of a pipeline; never uncounted
    errors += batch.size() - replies.size();
    if (first_error.empty()) first_error = "the pipeline returned fewer replies than commands";
  }
  if (ok != 0) succeeded(ok);
  if (errors != 0) failed(errors, first_error);
}

void RedisAlertStream::State::succeeded(std::uint64_t count) noexcept {
  written.fetch_add(count);
  written_series->inc(static_cast<double>(count));
  if (!failing) return;
  failing = false;
  log_info("alert stream '{}': writing to Redis again; {} alert(s) were dropped meanwhile", key,
           lost_in_outage);
  lost_in_outage = 0;
}

void RedisAlertStream::State::failed(std::uint64_t count, std::string_view why) noexcept {
  dropped_redis_error.fetch_add(count);
  redis_error_series->inc(static_cast<double>(count));
  lost_in_outage += count;
  if (failing) return;
  failing = true;
  const bool wrong_type = why.starts_with("WRONGTYPE");
  log_warning(
      "alert stream '{}': cannot write to Redis ({}){}; alerts are dropped and counted in "
      "prodsafe_alert_stream_dropped_total{{reason=\"redis_error\"}} until a write succeeds",
      key, why,
      wrong_type ? " - the key holds something other than a stream: delete it, or give the "
                   "stream another name"
                 : "");
}

void RedisAlertStream::State::drop_queue_full() noexcept {
  const std::uint64_t dropped = dropped_queue_full.fetch_add(1) + 1;
  queue_full_series->inc();
  // A full queue means a flood: log the 1st, 2nd, 4th, 8th... drop, not each.
  if (std::has_single_bit(dropped)) {
    log_warning(
        "alert stream '{}': queue full (capacity {}): dropped {} alert(s) so far; Redis is slow "
        "or down, or alerts come faster than it takes them",
        key, options.queue_capacity, dropped);
  }
}

void RedisAlertStream::State::drop_forked_child() noexcept {
  const std::uint64_t dropped = dropped_forked_child.fetch_add(1) + 1;
  forked_child_series->inc();
  if (dropped == 1) {
    log_warning(
        "alert stream '{}' was made in process {}, before a fork(); its writer thread did not "
        "follow into this process ({}), so this process's alerts are dropped. Make a "
        "RedisAlertStream in this process",
        key, pid, ::getpid());
  }
}

RedisAlertStream::RedisAlertStream(std::shared_ptr<redis::Client> client,
                                   RedisAlertStreamOptions options) {
  check(client.get(), options);
  state_ = std::make_unique<State>(std::move(client), std::move(options));
  state_->writer = std::thread([state = state_.get()] { state->run(); });
}

RedisAlertStream::~RedisAlertStream() {
  State& state = *state_;
  if (::getpid() != state.pid) {
    // A fork()ed child's copy: the writer thread is the parent's (it does not
    // exist here, and a mutex it held is held for good). Leave it all alone,
    // at the cost of its memory.
    (void)state_.release();
    return;
  }
  std::size_t left = 0;
  {
    std::unique_lock lock(state.mutex);
    state.closing = true;
    state.idle.wait_for(lock, state.options.drain_timeout, [&] { return state.idle_locked(); });
    state.abandon = true;
    left = state.queue.size();
    state.queue.clear();
  }
  state.wake.notify_all();
  state.writer.join();
  if (left != 0) {
    state.dropped_shutdown.fetch_add(left);
    state.shutdown_series->inc(static_cast<double>(left));
    log_warning("alert stream '{}' shut down with {} alert(s) unwritten after waiting {} ms",
                state.key, left, state.options.drain_timeout.count());
  }
}

AlertHook RedisAlertStream::hook() {
  std::shared_ptr<RedisAlertStream> self = weak_from_this().lock();
  if (!self) {
    throw InvalidArgument(
        "RedisAlertStream::hook(): the stream is not owned by a std::shared_ptr, which the hook "
        "must hold; make it with std::make_shared<RedisAlertStream>(...)");
  }
  return [self = std::move(self)](std::string_view event_type, std::string_view message,
                                  const AlertContext& context) {
    self->append(event_type, message, context);
  };
}

bool RedisAlertStream::append(std::string_view event_type, std::string_view message,
                              const AlertContext& context) noexcept {
  State& state = *state_;
  // Before any lock: in a child of fork(), a mutex the writer held stays held.
  if (::getpid() != state.pid) {
    state.drop_forked_child();
    return false;
  }
  bool closing = false;
  try {
    Fields fields = encode(event_type, message, context, state.clock, state.this_process);
    std::lock_guard lock(state.mutex);
    closing = state.closing;
    if (!closing && state.queue.size() < state.options.queue_capacity) {
      state.queue.push_back(std::move(fields));
      state.wake.notify_one();
      return true;
    }
  } catch (...) {  // out of memory copying the alert: counted as a full queue
  }
  if (closing) {
    state.dropped_shutdown.fetch_add(1);
    state.shutdown_series->inc();
  } else {
    state.drop_queue_full();
  }
  return false;
}

bool RedisAlertStream::flush(std::chrono::milliseconds timeout) {
  State& state = *state_;
  std::unique_lock lock(state.mutex);
  return state.idle.wait_for(lock, timeout, [&] { return state.idle_locked(); });
}

AlertStreamStats RedisAlertStream::stats() const noexcept {
  const State& state = *state_;
  return {.written = state.written.load(),
          .dropped_queue_full = state.dropped_queue_full.load(),
          .dropped_redis_error = state.dropped_redis_error.load(),
          .dropped_shutdown = state.dropped_shutdown.load(),
          .dropped_forked_child = state.dropped_forked_child.load()};
}

std::size_t RedisAlertStream::queued() const {
  std::lock_guard lock(state_->mutex);
  return state_->queue.size();
}

std::size_t RedisAlertStream::pending() const {
  std::lock_guard lock(state_->mutex);
  return state_->queue.size() + state_->in_flight;
}

const std::string& RedisAlertStream::key() const noexcept { return state_->key; }

const RedisAlertStreamOptions& RedisAlertStream::options() const noexcept {
  return state_->options;
}

}  // namespace prodsafe::alerts
