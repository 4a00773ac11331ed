#include "chaos/framework/proxy_loop.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"

namespace prodsafe::chaos {

using proxy::abort_socket;
using proxy::Chunk;
using proxy::close_socket;
using proxy::Flow;
using proxy::kAcceptBackoff;
using proxy::Link;
using proxy::SteadyClock;
using proxy::TimePoint;

FaultProxy::Loop::Loop(FaultProxyOptions opts) : options(std::move(opts)) {
  if (options.upstream_port < 1 || options.upstream_port > 65535) {
    throw InvalidArgument(fmt::format("FaultProxyOptions::upstream_port must be 1-65535, not {}",
                                      options.upstream_port));
  }
  if (options.listen_port < 0 || options.listen_port > 65535) {
    throw InvalidArgument(
        fmt::format("FaultProxyOptions::listen_port must be 0-65535, not {}", options.listen_port));
  }
  if (options.upstream_connect_timeout.count() < 0 || options.max_buffered_bytes == 0) {
    throw InvalidArgument(
        "FaultProxyOptions: upstream_connect_timeout must not be negative and "
        "max_buffered_bytes must be at least 1");
  }
  upstream = proxy::resolve(options.upstream_host, options.upstream_port);
  listener = proxy::listen_on_loopback(options.listen_port, options.listen_port);
  try {
    wake_fd = proxy::make_wake_fd();
  } catch (...) {
    close_socket(listener);
    throw;
  }
}

FaultProxy::Loop::~Loop() {
  for (Link& link : links) close_link(link, true);
  close_socket(listener);
  close_socket(wake_fd);
}

void FaultProxy::Loop::close_link(Link& link, bool reset) {
  if (link.closed) return;
  if (reset) {
    abort_socket(link.client);
    abort_socket(link.upstream);
  } else {
    close_socket(link.client);
    close_socket(link.upstream);
  }
  link.closed = true;
  counters.open.fetch_sub(1);
}

std::size_t FaultProxy::Loop::reset_all() {
  std::size_t count = 0;
  for (Link& link : links) {
    if (link.closed) continue;
    close_link(link, true);
    ++count;
  }
  counters.resets.fetch_add(count);
  return count;
}

void FaultProxy::Loop::set_blackhole(bool on) {
  blackhole = on;
  if (!on) return;
  std::size_t dropped = 0;
  for (Link& link : links) dropped += link.to_upstream.drop_all() + link.to_client.drop_all();
  counters.dropped.fetch_add(dropped);
}

void FaultProxy::Loop::accept_all(TimePoint now) {
  while (!stopping) {
    const int client = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        // Out of descriptors, most likely: the pending connection would make
        // the listener readable again at once, so rest before retrying.
        logger()->warn("fault proxy :{}: accept failed: {}; retrying in {} ms", options.listen_port,
                       std::strerror(errno), kAcceptBackoff.count());
        accept_paused_until = now + kAcceptBackoff;
      }
      return;
    }
    counters.accepted.fetch_add(1);
    if (refuse) {
      int fd = client;
      abort_socket(fd);
      counters.refused.fetch_add(1);
      continue;
    }
    proxy::set_no_delay(client);
    Link& link = links.emplace_back();
    link.client = client;
    counters.open.fetch_add(1);
    open_upstream(link, now);
  }
}

void FaultProxy::Loop::open_upstream(Link& link, TimePoint now) {
  bool connected = false;
  link.upstream = proxy::start_connect(upstream, connected);
  if (link.upstream >= 0) {
    link.connecting = !connected;
    if (link.connecting && options.upstream_connect_timeout.count() > 0) {
      link.connect_deadline = now + options.upstream_connect_timeout;
    }
    return;
  }
  logger()->debug("fault proxy :{}: upstream {}:{} unreachable: {}", options.listen_port,
                  options.upstream_host, options.upstream_port, std::strerror(errno));
  close_link(link, true);
  counters.upstream_failures.fetch_add(1);
}

void FaultProxy::Loop::finish_connect(Link& link) {
  const int error = proxy::connect_error(link.upstream);
  if (error == 0) {
    link.connecting = false;
    link.connect_deadline = TimePoint::max();
    return;
  }
  logger()->debug("fault proxy :{}: upstream {}:{} unreachable: {}", options.listen_port,
                  options.upstream_host, options.upstream_port, std::strerror(error));
  close_link(link, true);
  counters.upstream_failures.fetch_add(1);
}

// Writes the due chunks of `flow`; false when the destination failed.
bool FaultProxy::Loop::flush(Flow& flow, int destination, std::atomic<std::uint64_t>& counter,
                             TimePoint now) {
  while (!flow.queue.empty() && flow.queue.front().due <= now) {
    Chunk& chunk = flow.queue.front();
    const ssize_t n = ::send(destination, chunk.bytes.data() + chunk.sent,
                             chunk.bytes.size() - chunk.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;  // POLLOUT is asked for
    }
    chunk.sent += static_cast<std::size_t>(n);
    counter.fetch_add(static_cast<std::uint64_t>(n));
    if (chunk.sent == chunk.bytes.size()) {
      flow.queued_bytes -= chunk.bytes.size();
      flow.queue.pop_front();
    }
  }
  if (flow.queue.empty() && flow.source_eof && !flow.destination_shut) {
    ::shutdown(destination, SHUT_WR);
    flow.destination_shut = true;
  }
  return true;
}

void FaultProxy::Loop::pump(Link& link, TimePoint now) {
  if (link.closed) return;
  if (link.connecting) {
    if (now >= link.connect_deadline) {
      logger()->debug("fault proxy :{}: upstream connect timed out", options.listen_port);
      close_link(link, true);
      counters.upstream_failures.fetch_add(1);
    }
    return;
  }
  if (!flush(link.to_upstream, link.upstream, counters.to_upstream, now) ||
      !flush(link.to_client, link.client, counters.to_client, now)) {
    close_link(link, true);
    return;
  }
  if (link.to_upstream.destination_shut && link.to_client.destination_shut) {
    close_link(link, false);
  }
}

void FaultProxy::Loop::read_from(Link& link, bool from_client, TimePoint now) {
  Flow& flow = from_client ? link.to_upstream : link.to_client;
  const int source = from_client ? link.client : link.upstream;
  const ssize_t n = ::recv(source, read_buffer.data(), read_buffer.size(), 0);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return;
    close_link(link, true);  // a reset on one side resets the other
    return;
  }
  if (n == 0) {
    flow.source_eof = true;
    return;
  }
  if (blackhole) {
    counters.dropped.fetch_add(static_cast<std::uint64_t>(n));
    return;
  }
  flow.queued_bytes += static_cast<std::size_t>(n);
  flow.queue.push_back(
      Chunk{std::string(read_buffer.data(), static_cast<std::size_t>(n)), 0, now + latency});
}

int FaultProxy::Loop::poll_timeout_ms(TimePoint now) const {
  TimePoint next = now < accept_paused_until ? accept_paused_until : TimePoint::max();
  for (const Link& link : links) {
    if (link.closed) continue;
    if (link.connecting) next = std::min(next, link.connect_deadline);
    for (const Flow* flow : {&link.to_upstream, &link.to_client}) {
      if (!flow->queue.empty() && flow->queue.front().due > now) {
        next = std::min(next, flow->queue.front().due);
      }
    }
  }
  if (next == TimePoint::max()) return -1;
  if (next <= now) return 0;
  // Rounded up, so the loop never wakes just before a chunk is due and spins.
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - now);
  return static_cast<int>(std::min<std::chrono::milliseconds::rep>(wait.count(), 60'000));
}

void FaultProxy::Loop::run() {
  enum class Role { kListener, kWake, kClient, kUpstream };
  struct Target {
    Role role;
    Link* link;
  };
  std::vector<pollfd> fds;
  std::vector<Target> targets;
  while (!stopping) {
    TimePoint now = SteadyClock::now();
    for (Link& link : links) pump(link, now);
    links.remove_if([](const Link& link) { return link.closed; });

    fds.clear();
    targets.clear();
    fds.push_back({now < accept_paused_until ? -1 : listener, POLLIN, 0});
    targets.push_back({Role::kListener, nullptr});
    fds.push_back({wake_fd, POLLIN, 0});
    targets.push_back({Role::kWake, nullptr});
    for (Link& link : links) {
      auto wants_read = [&](const Flow& flow) {
        return !flow.source_eof && flow.queued_bytes < options.max_buffered_bytes;
      };
      auto wants_write = [&](const Flow& flow) {
        return !flow.queue.empty() && flow.queue.front().due <= now;
      };
      short client_events = 0;
      if (wants_read(link.to_upstream)) client_events |= POLLIN;
      if (wants_write(link.to_client)) client_events |= POLLOUT;
      // An idle side whose peer has closed would report POLLHUP forever:
      // leave it out (a later write to it still fails and resets the link).
      const bool client_idle = client_events == 0 && link.to_upstream.source_eof;
      fds.push_back({client_idle ? -1 : link.client, client_events, 0});
      targets.push_back({Role::kClient, &link});
      short upstream_events = 0;
      if (link.connecting) {
        upstream_events = POLLOUT;
      } else {
        if (wants_read(link.to_client)) upstream_events |= POLLIN;
        if (wants_write(link.to_upstream)) upstream_events |= POLLOUT;
      }
      const bool upstream_idle = upstream_events == 0 && link.to_client.source_eof;
      fds.push_back({upstream_idle ? -1 : link.upstream, upstream_events, 0});
      targets.push_back({Role::kUpstream, &link});
    }

    const int ready = ::poll(fds.data(), fds.size(), poll_timeout_ms(now));
    if (ready < 0) {
      if (errno == EINTR) continue;
      logger()->error("fault proxy :{}: poll failed: {}", options.listen_port,
                      std::strerror(errno));
      break;
    }
    now = SteadyClock::now();
    bool woken = false;
    bool accept_ready = false;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      const short events = fds[i].revents;
      if (events == 0) continue;
      const Target& target = targets[i];
      if (target.role == Role::kListener) {
        accept_ready = true;
        continue;
      }
      if (target.role == Role::kWake) {
        woken = true;
        continue;
      }
      Link& link = *target.link;
      if (link.closed) continue;
      const bool from_client = target.role == Role::kClient;
      if (!from_client && link.connecting) {
        finish_connect(link);
        continue;
      }
      // POLLHUP and POLLERR surface through the read (0 or an error).
      if (events & (POLLIN | POLLHUP | POLLERR)) read_from(link, from_client, now);
    }
    if (accept_ready) accept_all(now);
    if (woken) {
      proxy::drain(wake_fd);
      run_posted_tasks();
    }
  }
  reset_all();
  close_socket(listener);
  std::lock_guard lock(tasks_mutex);
  exited = true;
  for (Task& task : tasks) task(*this);
  tasks_done += tasks.size();
  tasks.clear();
  tasks_finished.notify_all();
}

void FaultProxy::Loop::run_posted_tasks() {
  std::deque<Task> batch;
  {
    std::lock_guard lock(tasks_mutex);
    batch.swap(tasks);
  }
  for (Task& task : batch) task(*this);
  std::lock_guard lock(tasks_mutex);
  tasks_done += batch.size();
  tasks_finished.notify_all();
}

void FaultProxy::Loop::execute(Task task) {
  std::unique_lock lock(tasks_mutex);
  if (exited) {
    task(*this);
    return;
  }
  tasks.push_back(std::move(task));
  const std::uint64_t ticket = ++tasks_posted;
  proxy::wake(wake_fd);
  tasks_finished.wait(lock, [&] { return tasks_done >= ticket; });
}

}  // namespace prodsafe::chaos
