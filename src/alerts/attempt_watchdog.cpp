#include "attempt_watchdog.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace prodsafe::alerts::detail {

AttemptWatchdog::AttemptWatchdog() : thread_([this] { run(); }) {}

AttemptWatchdog::~AttemptWatchdog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    close_locked();
  }
  changed_.notify_all();
  thread_.join();
}

void AttemptWatchdog::begin(TimePoint deadline) {
  {
    std::lock_guard lock(mutex_);
    close_locked();
    deadline_ = deadline;
    fired_ = false;
  }
  changed_.notify_all();
}

void AttemptWatchdog::adopt_socket(int fd) {
  std::lock_guard lock(mutex_);
  close_locked();
  socket_ = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (fired_ || cancelled_) shut_locked();
}

bool AttemptWatchdog::end() {
  bool fired = false;
  {
    std::lock_guard lock(mutex_);
    close_locked();
    deadline_.reset();
    fired = fired_;
    fired_ = false;
  }
  changed_.notify_all();
  return fired;
}

void AttemptWatchdog::cancel() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
  shut_locked();
}

bool AttemptWatchdog::expired() const {
  std::lock_guard lock(mutex_);
  return fired_ || cancelled_ || (deadline_ && std::chrono::steady_clock::now() >= *deadline_);
}

void AttemptWatchdog::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!deadline_ || fired_) {
      changed_.wait(lock);
    } else if (std::chrono::steady_clock::now() < *deadline_) {
      changed_.wait_until(lock, *deadline_);
    } else {
      fired_ = true;
      shut_locked();
    }
  }
}

// shutdown() acts on the socket, not the descriptor: httplib's own descriptor
// of it fails from now on too (a connect in progress is aborted).
void AttemptWatchdog::shut_locked() {
  if (socket_ >= 0) ::shutdown(socket_, SHUT_RDWR);
}

void AttemptWatchdog::close_locked() {
  if (socket_ >= 0) ::close(socket_);
  socket_ = -1;
}

}  // namespace prodsafe::alerts::detail
