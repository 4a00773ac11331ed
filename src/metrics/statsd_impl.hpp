// StatsdClient's state, shared by the client (statsd.cpp) and the exporter
// (statsd_exporter.cpp), which records without asking the guard again.
#pragma once

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>

#include "prodsafe/metrics/statsd.hpp"

namespace prodsafe::metrics {

enum class Kind { kCounter, kGauge, kTiming, kHistogram, kDistribution };

struct StatsdClient::Impl {
  StatsdOptions options;
  std::string target;         // host:port, for messages
  std::string prefix;         // with its trailing dot
  std::string constant_tags;  // "k:v,k2:v2", kDogStatsd only
  MetricsCardinalityGuard& guard;
  bool dog = true;
  int fd = -1;

  // Guards buffer, buffered_metrics and stopping; wake signals stopping to
  // the flusher. The fields above are set before the flusher starts and
  // then only read; the counters below are atomic.
  std::mutex mutex;
  std::string buffer;
  std::uint64_t buffered_metrics = 0;
  std::condition_variable wake;
  bool stopping = false;
  std::thread flusher;

  std::atomic<std::uint64_t> sent_packets{0};
  std::atomic<std::uint64_t> sent_metrics{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> send_errors{0};
  std::atomic<std::uint64_t> overflowed{0};
  std::atomic<std::uint64_t> sanitised{0};
  std::atomic<bool> warned_tags{false};
  std::atomic<std::int64_t> last_error_log{0};
  std::atomic<std::int64_t> last_drop_log{0};
  std::atomic<std::int64_t> last_sanitise_log{0};

  explicit Impl(StatsdOptions opts)
      : options(std::move(opts)),
        guard(options.guard != nullptr ? *options.guard : global_guard()),
        dog(options.flavour == StatsdFlavour::kDogStatsd) {}
  ~Impl() {
    if (fd >= 0) ::close(fd);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void open();
  void record(Kind kind, std::string_view name, double value, std::span<const Label> tags,
              double sample_rate, bool guarded);
  void append_line(std::string& out, Kind kind, std::string_view name, double value,
                   std::span<const Label> tags, double sample_rate, bool overflow) const;
  void submit(std::string_view lines, std::uint64_t metrics);
  void send(std::string_view datagram, std::uint64_t metrics);
  void flush();
  void drop(std::uint64_t metrics, std::string_view why);
};

}  // namespace prodsafe::metrics
