// Internal: ends a webhook attempt at its deadline, or at once on cancel().
//
// cpp-httplib's timeouts limit each read and write, so a peer that sends a
// byte before each read times out holds an attempt for as long as it likes,
// and ClientImpl::stop() waits for a connect or TLS handshake in progress. The
// watchdog instead keeps its own duplicate of the attempt's socket (taken in
// httplib's socket-options callback, before connect) and shuts the socket down
// from its thread when the deadline passes: every read, write, connect or
// handshake on it then fails at once. Owning the duplicate means a socket
// number httplib has closed and the process reused is never touched.
//
// Thread safety: begin(), end() and adopt_socket() are called by the one
// thread making attempts; cancel() by any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace prodsafe::alerts::detail {

class AttemptWatchdog {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  AttemptWatchdog();   // starts the watchdog thread
  ~AttemptWatchdog();  // stops and joins it
  AttemptWatchdog(const AttemptWatchdog&) = delete;
  AttemptWatchdog& operator=(const AttemptWatchdog&) = delete;

  // An attempt starts that must end by `deadline`.
  void begin(TimePoint deadline);
  // The attempt's socket, just created: watched until end() (or the next
  // socket). Shut down at once when the deadline passed or cancel() was called.
  void adopt_socket(int fd);
  // The attempt ended. Returns true when the deadline cut it off.
  bool end();
  // Cuts the attempt in flight off now, and every later one at its start.
  void cancel();
  // True once the deadline of the current attempt passed, or after cancel().
  [[nodiscard]] bool expired() const;

 private:
  void run();
  void shut_locked();
  void close_locked();

  mutable std::mutex mutex_;  // guards every field below but thread_
  std::condition_variable changed_;
  std::optional<TimePoint> deadline_;
  int socket_ = -1;  // our duplicate of the attempt's socket, or -1
  bool fired_ = false;
  bool cancelled_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace prodsafe::alerts::detail
