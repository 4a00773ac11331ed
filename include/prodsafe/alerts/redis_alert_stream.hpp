// A fleet-visible alert history: every alert fired through AlertHooks is
// appended to a capped Redis stream that every process of the fleet writes
// to and a dashboard reads (read_recent_alerts in recent_alerts.hpp, which
// also describes the entries' fields).
//
//   auto stream = std::make_shared<RedisAlertStream>(
//       client, RedisAlertStreamOptions{.max_entries = 1000});
//   hooks->add_event_hook(stream->hook());
//
// Part of the prodsafe::alerts_redis component (it links the Redis client;
// prodsafe::alerts does not).
//
// append() (what the hook calls) never blocks on Redis and never throws: it
// copies the alert into a bounded in-memory queue and returns. One thread of
// the stream's own takes what is queued, up to max_batch alerts at a time,
// and sends them as one pipeline of XADD key MAXLEN ~ max_entries * ...
// (MAXLEN max_entries with exact_trim).
//
// Nothing is lost silently; nothing is retried. An alert that is not written
// is counted in stats() and in prodsafe_alert_stream_dropped_total{reason}
// (docs/metrics.md):
//   queue_full    the queue held queue_capacity alerts (the new one is
//                 dropped), or copying the alert ran out of memory;
//   redis_error   its XADD failed: Redis unreachable or timed out (an XADD
//                 that timed out may still land), or an error reply such as
//                 WRONGTYPE when the key holds something else;
//   shutdown      still queued when the destructor's drain_timeout ended, or
//                 appended after the destructor began;
//   forked_child  appended in a child of fork() (see below).
// Written alerts count in prodsafe_alert_stream_written_total. The first
// failed write of an outage is logged (a warning), and so is the first
// success after it (with how many alerts the outage cost); a full queue logs
// its 1st, 2nd, 4th, 8th... drop.
//
// The destructor stops taking alerts, waits up to drain_timeout for the
// queue to be written, drops (and counts) what is left, and joins the
// thread, which first finishes the write in flight. So it returns within
// drain_timeout plus one write, and a write ends within the client's
// pool_checkout_timeout + connect_timeout + command_timeout: the constructor
// refuses a client for which any of these three is 0 (wait forever).
//
// fork(): the thread does not follow into a child. In a child, append()
// drops and counts (forked_child) and logs the first such drop, and the
// destructor leaves the parent's thread and queue alone (their memory is
// not freed). Make a stream in each process that fires alerts, after
// forking workers.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "prodsafe/alerts/alert_hooks.hpp"
#include "prodsafe/alerts/recent_alerts.hpp"

namespace prodsafe {
class Clock;
}  // namespace prodsafe

namespace prodsafe::metrics {
class Registry;
}  // namespace prodsafe::metrics

namespace prodsafe::redis {
class Client;
}  // namespace prodsafe::redis

namespace prodsafe::alerts {

struct RedisAlertStreamOptions {
  // The stream's name; the key is Client::key(name), so the client's
  // key_prefix applies. Default: kAlertStreamName ("alerts:recent"). Must not
  // be empty.
  std::string name{kAlertStreamName};
  // Entries the stream keeps (XADD's MAXLEN). Default: 1000. Must be at
  // least 1.
  std::size_t max_entries = 1000;
  // Trim to exactly max_entries (MAXLEN N). Default: false, MAXLEN ~ N,
  // cheaper: Redis trims whole nodes of the stream, so it may keep up to
  // stream-node-max-entries (100 by default) more than max_entries.
  bool exact_trim = false;
  // Alerts waiting to be written (the batch in flight not included); more
  // are dropped. Default: 1000. Must be at least 1.
  std::size_t queue_capacity = 1000;
  // Most XADDs sent in one pipeline. Default: 100. Must be at least 1.
  std::size_t max_batch = 100;
  // How long the destructor waits for queued alerts to be written before
  // dropping them. Default: 1 s. 0: drop at once (the write in flight still
  // ends first). Must be >= 0.
  std::chrono::milliseconds drain_timeout{1000};
  // Reads the wall time of alerts whose context has no timestamp. Default:
  // null, the real clock.
  Clock* clock = nullptr;
  // Where the stream's counts go (docs/metrics.md). Default: nullptr,
  // metrics::default_registry(). Must outlive the stream.
  metrics::Registry* metrics = nullptr;
};

// What a stream did with the alerts given to it (see the header comment).
struct AlertStreamStats {
  std::uint64_t written = 0;
  std::uint64_t dropped_queue_full = 0;
  std::uint64_t dropped_redis_error = 0;
  std::uint64_t dropped_shutdown = 0;
  std::uint64_t dropped_forked_child = 0;

  [[nodiscard]] std::uint64_t dropped() const noexcept {
    return dropped_queue_full + dropped_redis_error + dropped_shutdown + dropped_forked_child;
  }
};

class RedisAlertStream : public std::enable_shared_from_this<RedisAlertStream> {
 public:
  // Starts the writer thread; opens no connection until the first alert.
  // Throws InvalidArgument for a null client, options out of range, or a
  // client that may wait forever (pool_checkout_timeout, connect_timeout or
  // command_timeout 0).
  explicit RedisAlertStream(std::shared_ptr<redis::Client> client,
                            RedisAlertStreamOptions options = {});
  ~RedisAlertStream();
  RedisAlertStream(const RedisAlertStream&) = delete;
  RedisAlertStream& operator=(const RedisAlertStream&) = delete;

  // A hook for AlertHooks (add_event_hook) that calls append(). It holds the
  // stream, which then lives as long as the hook. Throws InvalidArgument
  // when the stream is not owned by a std::shared_ptr (make it with
  // std::make_shared).
  [[nodiscard]] AlertHook hook();

  // Queues the alert and returns at once: true if queued, false if dropped
  // (counted; see the header comment). An empty context.timestamp is read
  // from the clock, an empty context.instance is this_instance().
  bool append(std::string_view event_type, std::string_view message,
              const AlertContext& context) noexcept;

  // Waits until every queued alert was written or dropped, or until
  // `timeout` passes. Returns true when nothing is left to do.
  bool flush(std::chrono::milliseconds timeout);

  [[nodiscard]] AlertStreamStats stats() const noexcept;
  // Alerts waiting in the queue (the batch in flight not included).
  [[nodiscard]] std::size_t queued() const;
  // Alerts queued or in the batch in flight.
  [[nodiscard]] std::size_t pending() const;
  // The stream's key: Client::key(options().name).
  [[nodiscard]] const std::string& key() const noexcept;
  [[nodiscard]] const RedisAlertStreamOptions& options() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace prodsafe::alerts
