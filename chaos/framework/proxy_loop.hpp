// The FaultProxy's poll() loop (chaos/framework/fault_proxy.hpp): the
// proxied links, their latency queues, the faults, and the mailbox through
// which the public setters run on the loop's thread. The socket calls are in
// proxy_sockets.hpp. Internal to the chaos framework.
//
// Thread safety: everything but the mailbox (tasks*, exited), the counters
// (atomics) and stop_mutex is touched only on the loop's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chaos/framework/fault_proxy.hpp"
#include "chaos/framework/proxy_sockets.hpp"

namespace prodsafe::chaos {
namespace proxy {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

inline constexpr std::size_t kReadSize = 64 * 1024;
inline constexpr std::chrono::milliseconds kAcceptBackoff{100};

// Bytes read from one side, held until `due`, then written to the other.
struct Chunk {
  std::string bytes;
  std::size_t sent = 0;
  TimePoint due;
};

// One direction of a proxied connection.
struct Flow {
  std::deque<Chunk> queue;
  std::size_t queued_bytes = 0;
  bool source_eof = false;        // the sending side closed its half
  bool destination_shut = false;  // and that close was passed on (SHUT_WR)

  std::size_t drop_all() {
    std::size_t dropped = 0;
    for (const Chunk& chunk : queue) dropped += chunk.bytes.size() - chunk.sent;
    queue.clear();
    queued_bytes = 0;
    return dropped;
  }
};

struct Link {
  int client = -1;
  int upstream = -1;
  bool connecting = true;
  TimePoint connect_deadline = TimePoint::max();
  Flow to_upstream;
  Flow to_client;
  bool closed = false;
};

}  // namespace proxy

struct FaultProxy::Loop {
  using TimePoint = proxy::TimePoint;
  using Link = proxy::Link;
  using Flow = proxy::Flow;

  FaultProxyOptions options;
  proxy::SocketAddress upstream;
  int listener = -1;
  int wake_fd = -1;

  // Fault state: touched only on the loop thread (setters run there).
  std::chrono::milliseconds latency{0};
  bool blackhole = false;
  bool refuse = false;
  bool stopping = false;
  TimePoint accept_paused_until{};

  std::list<Link> links;  // std::list: the poll loop holds pointers across accepts
  std::vector<char> read_buffer = std::vector<char>(proxy::kReadSize);

  struct Counters {
    std::atomic<std::uint64_t> accepted{0}, open{0}, refused{0}, resets{0}, upstream_failures{0},
        to_upstream{0}, to_client{0}, dropped{0};
  } counters;

  // Work the setters post from other threads, run between two polls.
  using Task = std::function<void(Loop&)>;
  // Guards tasks, tasks_posted, tasks_done and exited; tasks_finished is
  // signalled under it when tasks_done grows.
  std::mutex tasks_mutex;
  std::condition_variable tasks_finished;
  std::deque<Task> tasks;          // guarded by tasks_mutex
  std::uint64_t tasks_posted = 0;  // guarded by tasks_mutex
  std::uint64_t tasks_done = 0;    // guarded by tasks_mutex
  bool exited = false;             // guarded by tasks_mutex; then tasks run on the caller's thread

  // Serialises stop() callers around join(): guards thread (its join).
  std::mutex stop_mutex;
  std::thread thread;

  explicit Loop(FaultProxyOptions opts);
  ~Loop();

  // Runs `task` on the loop's thread and waits for it.
  void execute(Task task);
  void run_posted_tasks();
  void run();
  void accept_all(TimePoint now);
  void open_upstream(Link& link, TimePoint now);
  void pump(Link& link, TimePoint now);
  bool flush(Flow& flow, int destination, std::atomic<std::uint64_t>& counter, TimePoint now);
  void read_from(Link& link, bool from_client, TimePoint now);
  void finish_connect(Link& link);
  void close_link(Link& link, bool reset);
  std::size_t reset_all();
  void set_blackhole(bool on);
  int poll_timeout_ms(TimePoint now) const;
};

}  // namespace prodsafe::chaos
