#include "prodsafe/metrics/statsd.hpp"

#include "statsd_impl.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <system_error>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/metrics/registry.hpp"

namespace prodsafe::metrics {
namespace {

constexpr std::string_view kReserved = ":|@#,\n";
constexpr std::size_t kMinPacketBytes = 64;
constexpr std::size_t kMaxPacketBytes = 65507;  // the largest IPv4 UDP payload
constexpr std::chrono::seconds kLogInterval{60};

std::string_view type_code(Kind kind, StatsdFlavour flavour) {
  switch (kind) {
    case Kind::kCounter:
      return "c";
    case Kind::kGauge:
      return "g";
    case Kind::kTiming:
      return "ms";
    case Kind::kHistogram:
      return "h";
    case Kind::kDistribution:
      return flavour == StatsdFlavour::kDogStatsd ? "d" : "h";
  }
  return "c";
}

void check_name(std::string_view what, std::string_view name) {
  if (name.empty()) throw InvalidArgument(fmt::format("a StatsD {} must not be empty", what));
  const auto at = name.find_first_of(kReserved);
  if (at == std::string_view::npos) return;
  const std::string shown = name[at] == '\n' ? "\\n" : std::string(1, name[at]);
  std::string printable(name);
  for (char& c : printable) c = c == '\n' ? ' ' : c;
  throw InvalidArgument(fmt::format(
      "StatsD {} '{}' contains '{}', which StatsD reserves as a separator; use '.' or '_' instead",
      what, printable, shown));
}

bool has_reserved(std::string_view text) {
  return text.find_first_of(kReserved) != std::string_view::npos;
}

// Appends `text` with each character StatsD reserves replaced by '_'.
void append_tag_value(std::string& out, std::string_view text) {
  for (char c : text) out += kReserved.find(c) == std::string_view::npos ? c : '_';
}

std::string replace_reserved(std::string_view text) {
  std::string out;
  append_tag_value(out, text);
  return out;
}

// `text` for a log line, newlines shown as "\\n".
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text) out += c == '\n' ? std::string("\\n") : std::string(1, c);
  return out;
}

// The metric's name as the guard (Prometheus rules) accepts it.
void guard_name(std::string& out, std::string_view prefix, std::string_view name) {
  out.clear();
  for (std::string_view part : {prefix, name}) {
    for (char c : part) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      out += ok ? c : '_';
    }
  }
  if (out.front() >= '0' && out.front() <= '9') out.insert(out.begin(), '_');
}

// A uniform draw in [0, 1) from a per-thread engine.
double uniform() {
  thread_local std::minstd_rand engine(static_cast<std::uint_fast32_t>(
      std::random_device{}() ^ std::hash<std::thread::id>{}(std::this_thread::get_id())));
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

// True at most once per kLogInterval for one `last` (steady nanoseconds; 0: never).
bool may_log(std::atomic<std::int64_t>& last) {
  const std::int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  std::int64_t previous = last.load(std::memory_order_relaxed);
  if (previous != 0 && now - previous < std::chrono::nanoseconds(kLogInterval).count()) {
    return false;
  }
  return last.compare_exchange_strong(previous, now);
}

}  // namespace

void StatsdClient::Impl::open() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_protocol = IPPROTO_UDP;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(options.port);
  if (const int rc = ::getaddrinfo(options.host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    throw ConfigError(fmt::format(
        "cannot resolve the StatsD host {}: {}; check the host name and DNS, or give an IP "
        "address",
        target, rc == EAI_SYSTEM ? std::generic_category().message(errno) : ::gai_strerror(rc)));
  }
  int error = 0;
  for (const addrinfo* address = found; address != nullptr && fd < 0; address = address->ai_next) {
    fd = ::socket(address->ai_family, address->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  address->ai_protocol);
    if (fd < 0) {
      error = errno;
    } else if (::connect(fd, address->ai_addr, address->ai_addrlen) != 0) {
      error = errno;
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) {
    throw IoError(fmt::format(
        "cannot open a UDP socket to the StatsD server {}: {}; check that the address is "
        "reachable from this host",
        target, std::generic_category().message(error)));
  }
}

void StatsdClient::Impl::drop(std::uint64_t metrics, std::string_view why) {
  dropped.fetch_add(metrics, std::memory_order_relaxed);
  if (may_log(last_drop_log)) {
    logger()->warn("statsd: dropped a metric for {}: {} ({} dropped so far)", target, why,
                   dropped.load(std::memory_order_relaxed));
  }
}

void StatsdClient::Impl::append_line(std::string& out, Kind kind, std::string_view name,
                                     double value, std::span<const Label> tags, double sample_rate,
                                     bool overflow) const {
  out += prefix;
  out += name;
  fmt::format_to(std::back_inserter(out), ":{}|{}", value, type_code(kind, options.flavour));
  if (sample_rate < 1.0) fmt::format_to(std::back_inserter(out), "|@{}", sample_rate);
  if (!dog) return;
  bool first = true;
  for (const auto& [tag, tag_value] : tags) {
    if (tag_value.empty()) continue;
    out += first ? "|#" : ",";
    first = false;
    out += tag;
    out += ':';
    append_tag_value(out, overflow ? kOverflowValue : tag_value);
  }
  if (!constant_tags.empty()) {
    out += first ? "|#" : ",";
    out += constant_tags;
  }
}

void StatsdClient::Impl::record(Kind kind, std::string_view name, double value,
                                std::span<const Label> tags, double sample_rate, bool guarded) {
  if (name.empty()) throw InvalidArgument("a StatsD metric name must not be empty");
  bool reserved = has_reserved(name);
  bool reserved_tag_name = false;
  for (const auto& [tag, tag_value] : tags) {
    if (tag.empty()) throw InvalidArgument(fmt::format("a StatsD tag name of {} is empty", name));
    reserved_tag_name = reserved_tag_name || has_reserved(tag);
    reserved = reserved || (dog && (has_reserved(tag) || has_reserved(tag_value)));
  }
  if (!(sample_rate > 0.0 && sample_rate <= 1.0)) {
    throw InvalidArgument(fmt::format(
        "StatsD sample rate {} for {} is out of range; give a value in (0, 1] (1: every call)",
        sample_rate, name));
  }
  if (!std::isfinite(value)) {
    drop(1, fmt::format("{}{} has the value {}, which StatsD cannot carry", prefix, name, value));
    return;
  }
  value += 0.0;  // -0 becomes 0: "-0|g" would be a relative change to Etsy StatsD
  // A name that Prometheus allows (':' in recording-rule names) or a label
  // value from a registry must not cost the metric: replace, count, log.
  const std::string_view original = name;
  thread_local std::string clean_name;
  thread_local std::vector<std::string> clean_tag_names;
  thread_local std::vector<Label> clean_tags;
  if (has_reserved(name)) {
    clean_name = replace_reserved(name);
    name = clean_name;
  }
  if (reserved_tag_name) {
    clean_tag_names.clear();
    for (const auto& tag : tags) clean_tag_names.push_back(replace_reserved(tag.first));
    clean_tags.clear();
    for (std::size_t i = 0; i < tags.size(); ++i)
      clean_tags.emplace_back(clean_tag_names[i], tags[i].second);
    tags = clean_tags;
  }
  if (reserved) {
    sanitised.fetch_add(1, std::memory_order_relaxed);
    if (may_log(last_sanitise_log)) {
      logger()->warn(
          "statsd: {}{} has a character StatsD reserves (: | @ # , or a newline) in its name{}; "
          "each is sent as '_' ({}{}); counted in sanitised() ({} so far), logged at most once "
          "a minute",
          prefix, printable(original), dog ? " or tags" : "", prefix, name,
          sanitised.load(std::memory_order_relaxed));
    }
  }
  bool overflow = false;
  if (!tags.empty() && !dog && !warned_tags.exchange(true)) {
    logger()->warn(
        "statsd: plain StatsD has no tags, so the tags of {}{} (and of every other metric) are "
        "not sent; use StatsdFlavour::kDogStatsd if {} understands DogStatsD tags",
        prefix, name, target);
  }
  if (!tags.empty() && dog && guarded) {
    thread_local std::string checked_name;
    guard_name(checked_name, prefix, name);
    if (!guard.validate_labels(checked_name, tags).is_valid) {
      overflow = true;
      overflowed.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (sample_rate < 1.0 && uniform() >= sample_rate) return;

  thread_local std::string line;
  line.clear();
  // "-v|g" means "decrease by v" to Etsy StatsD, statsd_exporter and
  // Telegraf (also with DogStatsD tags); set 0 first, in the same datagram.
  // The Datadog agent keeps a gauge's last value, so it reads -v as well.
  if (kind == Kind::kGauge && value < 0) {
    append_line(line, kind, name, 0.0, tags, sample_rate, overflow);
    line += '\n';
  }
  append_line(line, kind, name, value, tags, sample_rate, overflow);
  submit(line, 1);
}

void StatsdClient::Impl::submit(std::string_view lines, std::uint64_t metrics) {
  if (lines.size() > options.max_packet_bytes) {
    drop(metrics, fmt::format("its line of {} bytes is longer than max_packet_bytes ({}); shorten "
                              "its name and tags or raise max_packet_bytes",
                              lines.size(), options.max_packet_bytes));
    return;
  }
  if (options.flush_interval.count() == 0) {
    send(lines, metrics);
    return;
  }
  std::string full;
  std::uint64_t full_metrics = 0;
  {
    std::lock_guard lock(mutex);
    if (!buffer.empty() && buffer.size() + 1 + lines.size() > options.max_packet_bytes) {
      full.swap(buffer);
      full_metrics = std::exchange(buffered_metrics, 0);
      buffer.reserve(options.max_packet_bytes);
    }
    if (!buffer.empty()) buffer += '\n';
    buffer += lines;
    buffered_metrics += metrics;
  }
  if (!full.empty()) send(full, full_metrics);
}

void StatsdClient::Impl::send(std::string_view datagram, std::uint64_t metrics) {
  ssize_t sent = -1;
  do {
    sent = ::send(fd, datagram.data(), datagram.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent >= 0) {
    sent_packets.fetch_add(1, std::memory_order_relaxed);
    sent_metrics.fetch_add(metrics, std::memory_order_relaxed);
    return;
  }
  const int error = errno;
  const std::uint64_t errors = send_errors.fetch_add(1, std::memory_order_relaxed) + 1;
  if (may_log(last_error_log)) {
    logger()->warn(
        "statsd: sending to {} failed: {} ({} datagram(s) lost so far); check that a StatsD "
        "server or Datadog agent listens there",
        target, std::generic_category().message(error), errors);
  }
}

void StatsdClient::Impl::flush() {
  std::string full;
  std::uint64_t full_metrics = 0;
  {
    std::lock_guard lock(mutex);
    if (buffer.empty()) return;
    full.swap(buffer);
    full_metrics = std::exchange(buffered_metrics, 0);
    buffer.reserve(options.max_packet_bytes);
  }
  send(full, full_metrics);
}

StatsdClient::StatsdClient(StatsdOptions options_in)
    : impl_(std::make_unique<Impl>(std::move(options_in))) {
  Impl& impl = *impl_;
  const StatsdOptions& options = impl.options;
  const bool ipv6 = options.host.find(':') != std::string::npos;
  impl.target = ipv6 ? fmt::format("[{}]:{}", options.host, options.port)
                     : fmt::format("{}:{}", options.host, options.port);
  if (options.port < 1 || options.port > 65535) {
    throw InvalidArgument(
        fmt::format("StatsD port {} is out of range; give 1 to 65535", options.port));
  }
  if (options.max_packet_bytes < kMinPacketBytes || options.max_packet_bytes > kMaxPacketBytes) {
    throw InvalidArgument(fmt::format("StatsD max_packet_bytes {} is out of range; give {} to {}",
                                      options.max_packet_bytes, kMinPacketBytes, kMaxPacketBytes));
  }
  if (options.flush_interval.count() < 0) {
    throw InvalidArgument("StatsD flush_interval must not be negative (0: send every metric)");
  }
  if (!options.prefix.empty()) {
    check_name("prefix", options.prefix);
    impl.prefix = options.prefix;
    if (impl.prefix.back() != '.') impl.prefix += '.';
  }
  for (const auto& [tag, value] : options.constant_tags) {
    check_name("constant tag name", tag);
    if (value.empty()) continue;
    if (!impl.constant_tags.empty()) impl.constant_tags += ',';
    impl.constant_tags += tag;
    impl.constant_tags += ':';
    append_tag_value(impl.constant_tags, value);
  }
  if (!impl.dog && !impl.constant_tags.empty()) {
    impl.constant_tags.clear();
    impl.warned_tags = true;
    logger()->warn(
        "statsd: plain StatsD has no tags, so the constant tags (and every metric's tags) are "
        "not sent to {}; use StatsdFlavour::kDogStatsd if it understands DogStatsD tags",
        impl.target);
  }
  impl.buffer.reserve(options.max_packet_bytes);
  impl.open();
  if (options.flush_interval.count() > 0) {
    impl.flusher = std::thread([&impl] {
      std::unique_lock lock(impl.mutex);
      while (!impl.wake.wait_for(lock, impl.options.flush_interval,
                                 [&impl] { return impl.stopping; })) {
        lock.unlock();
        impl.flush();
        lock.lock();
      }
    });
  }
}

StatsdClient::~StatsdClient() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->flusher.joinable()) impl_->flusher.join();
  impl_->flush();
}

void StatsdClient::counter(std::string_view name, double value, std::initializer_list<Label> tags,
                           double sample_rate) {
  impl_->record(Kind::kCounter, name, value, std::span<const Label>(tags.begin(), tags.size()),
                sample_rate, true);
}
void StatsdClient::counter(std::string_view name, double value, std::span<const Label> tags,
                           double sample_rate) {
  impl_->record(Kind::kCounter, name, value, tags, sample_rate, true);
}

void StatsdClient::gauge(std::string_view name, double value, std::initializer_list<Label> tags,
                         double sample_rate) {
  impl_->record(Kind::kGauge, name, value, std::span<const Label>(tags.begin(), tags.size()),
                sample_rate, true);
}
void StatsdClient::gauge(std::string_view name, double value, std::span<const Label> tags,
                         double sample_rate) {
  impl_->record(Kind::kGauge, name, value, tags, sample_rate, true);
}

void StatsdClient::timing(std::string_view name, std::chrono::duration<double, std::milli> elapsed,
                          std::initializer_list<Label> tags, double sample_rate) {
  impl_->record(Kind::kTiming, name, elapsed.count(),
                std::span<const Label>(tags.begin(), tags.size()), sample_rate, true);
}
void StatsdClient::timing(std::string_view name, std::chrono::duration<double, std::milli> elapsed,
                          std::span<const Label> tags, double sample_rate) {
  impl_->record(Kind::kTiming, name, elapsed.count(), tags, sample_rate, true);
}

void StatsdClient::histogram(std::string_view name, double value, std::initializer_list<Label> tags,
                             double sample_rate) {
  impl_->record(Kind::kHistogram, name, value, std::span<const Label>(tags.begin(), tags.size()),
                sample_rate, true);
}
void StatsdClient::histogram(std::string_view name, double value, std::span<const Label> tags,
                             double sample_rate) {
  impl_->record(Kind::kHistogram, name, value, tags, sample_rate, true);
}

void StatsdClient::distribution(std::string_view name, double value,
                                std::initializer_list<Label> tags, double sample_rate) {
  impl_->record(Kind::kDistribution, name, value, std::span<const Label>(tags.begin(), tags.size()),
                sample_rate, true);
}
void StatsdClient::distribution(std::string_view name, double value, std::span<const Label> tags,
                                double sample_rate) {
  impl_->record(Kind::kDistribution, name, value, tags, sample_rate, true);
}

void StatsdClient::flush() { impl_->flush(); }

std::uint64_t StatsdClient::sent_packets() const noexcept { return impl_->sent_packets.load(); }
std::uint64_t StatsdClient::sent_metrics() const noexcept { return impl_->sent_metrics.load(); }
std::uint64_t StatsdClient::dropped() const noexcept { return impl_->dropped.load(); }
std::uint64_t StatsdClient::send_errors() const noexcept { return impl_->send_errors.load(); }
std::uint64_t StatsdClient::overflowed() const noexcept { return impl_->overflowed.load(); }
std::uint64_t StatsdClient::sanitised() const noexcept { return impl_->sanitised.load(); }

}  // namespace prodsafe::metrics
