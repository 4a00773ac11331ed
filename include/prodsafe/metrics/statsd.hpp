// Pushes metrics over UDP to a StatsD server or a Datadog agent (DogStatsD).
//
//   StatsdClient statsd({.prefix = "prodsafe", .constant_tags = {{"env", "prod"}}});
//   statsd.counter("orders", 1, {{"side", "buy"}});
//   // sends prodsafe.orders:1|c|#side:buy,env:prod
//   statsd.timing("claim", std::chrono::microseconds(2500));
//   // sends prodsafe.claim:2.5|ms|#env:prod
//
//   StatsdExporter exporter(registry, statsd);  // pushes the Registry every 10 s
//
// Wire format: <prefix><name>:<value>|<type>[|@<rate>][|#<k:v>,...], several
// lines to a datagram, separated by '\n', a datagram never longer than
// max_packet_bytes. Lines wait in a buffer that goes out when the next line
// would not fit, on flush(), and every flush_interval on a background thread.
//
// The characters StatsD reserves (':', '|', '@', '#', ',', newline) become '_'
// in metric names, tag names and tag values (':' is legal in a Prometheus
// name, and a registry's label values can hold anything): the metric is sent,
// counted in sanitised() and logged at most once a minute. The prefix and
// constant tag names are configuration: one holding such a character throws
// InvalidArgument at construction. A tag with an empty value is left out, as
// Prometheus treats an empty label.
//
// Tags (kDogStatsd only) pass the MetricsCardinalityGuard as a Registry's
// labels do, under the metric's full name with every character Prometheus
// refuses made '_' ("prodsafe.orders" -> "prodsafe_orders"). A tag set the
// guard refuses (a forbidden name such as order_id, or past the metric's
// limit) is sent as the Registry's overflow series: every tag value becomes
// "__overflow__", so totals stay right and the series count stays bounded
// (counted in overflowed()); in strict mode the guard's CardinalityViolation
// is thrown and nothing is sent. Constant tags are fixed per process and do
// not pass the guard. Plain kStatsd has no tags: they are dropped, with one
// warning logged per client.
//
// Sending never blocks on the network and never throws: the socket is
// non-blocking and connected, so a server that is not listening shows up
// (through ICMP) as a failed later send. Failed datagrams are counted in
// send_errors() and logged at most once a minute; their metrics are lost.
//
// Thread safety: safe for concurrent use. Recording formats into a
// thread-local buffer and appends under a short lock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "prodsafe/metrics/cardinality_guard.hpp"

namespace prodsafe::metrics {

class Registry;

enum class StatsdFlavour {
  // Etsy StatsD and compatibles: no tags; histogram and distribution are
  // sent as "h" (a timer to Etsy StatsD).
  kStatsd,
  // The Datadog agent (and Telegraf's datadog_extensions, statsd_exporter):
  // tags as "|#k:v,k2:v2", "h" histograms, "d" distributions.
  kDogStatsd,
};

struct StatsdOptions {
  // Name or address (IPv4 or IPv6), resolved once, at construction. Default:
  // "127.0.0.1".
  std::string host = "127.0.0.1";
  // UDP port, 1 to 65535. Default: 8125.
  int port = 8125;
  // Put before every name, followed by a dot unless it ends with one:
  // "prodsafe" and "prodsafe." both give "prodsafe.orders". Default: "", none.
  std::string prefix{};
  // Default: kDogStatsd.
  StatsdFlavour flavour = StatsdFlavour::kDogStatsd;
  // Added to every metric after its own tags (kDogStatsd), e.g. {"env",
  // "prod"}. Default: none.
  std::vector<std::pair<std::string, std::string>> constant_tags{};
  // Largest datagram, in bytes, 64 to 65507. A metric line longer than this
  // is dropped (counted in dropped()). Default: 1432, which fits a 1500-byte
  // MTU with IPv6 and UDP headers; 8192 suits loopback to a local agent.
  std::size_t max_packet_bytes = 1432;
  // How often the background thread sends what is buffered. Default: 1 s.
  // 0: no buffering and no thread; every metric is a datagram of its own.
  std::chrono::milliseconds flush_interval{1000};
  // Checks tags (see above); must outlive the client. Default: null,
  // global_guard().
  MetricsCardinalityGuard* guard = nullptr;
};

class StatsdClient {
 public:
  // Resolves the host and opens the socket; starts the flush thread unless
  // flush_interval is 0. Throws ConfigError (naming host:port) when the host
  // does not resolve, IoError when the socket cannot be opened or connected,
  // InvalidArgument for options out of range.
  explicit StatsdClient(StatsdOptions options = {});
  // Stops the flush thread and sends what is still buffered.
  ~StatsdClient();
  StatsdClient(const StatsdClient&) = delete;
  StatsdClient& operator=(const StatsdClient&) = delete;

  // Every call below: `sample_rate` in (0, 1]; below 1, the call is sent with
  // that probability and carries "|@rate" so the server scales it back.
  // Throws InvalidArgument for an empty name or tag name or a bad rate, and
  // CardinalityViolation from a strict guard. A value that is not finite is
  // dropped (counted in dropped()); reserved characters in names and tags are
  // replaced (see above).

  // "|c": adds `value` to a count.
  void counter(std::string_view name, double value = 1.0, std::initializer_list<Label> tags = {},
               double sample_rate = 1.0);
  void counter(std::string_view name, double value, std::span<const Label> tags,
               double sample_rate = 1.0);
  // "|g": the current value. A negative value is sent as "0|g" then "-v|g"
  // in one datagram (both flavours): "-v|g" alone means "decrease by v" to
  // Etsy StatsD, statsd_exporter and Telegraf; the Datadog agent keeps a
  // gauge's last value, -v.
  void gauge(std::string_view name, double value, std::initializer_list<Label> tags = {},
             double sample_rate = 1.0);
  void gauge(std::string_view name, double value, std::span<const Label> tags,
             double sample_rate = 1.0);
  // "|ms": a duration, sent in milliseconds (fractions kept).
  void timing(std::string_view name, std::chrono::duration<double, std::milli> elapsed,
              std::initializer_list<Label> tags = {}, double sample_rate = 1.0);
  void timing(std::string_view name, std::chrono::duration<double, std::milli> elapsed,
              std::span<const Label> tags, double sample_rate = 1.0);
  // "|h": one observation, aggregated per agent flush.
  void histogram(std::string_view name, double value, std::initializer_list<Label> tags = {},
                 double sample_rate = 1.0);
  void histogram(std::string_view name, double value, std::span<const Label> tags,
                 double sample_rate = 1.0);
  // "|d": one observation, aggregated globally by Datadog (kStatsd: "|h").
  void distribution(std::string_view name, double value, std::initializer_list<Label> tags = {},
                    double sample_rate = 1.0);
  void distribution(std::string_view name, double value, std::span<const Label> tags,
                    double sample_rate = 1.0);

  // Sends what is buffered now.
  void flush();

  // Datagrams sent, and the metrics in them.
  [[nodiscard]] std::uint64_t sent_packets() const noexcept;
  [[nodiscard]] std::uint64_t sent_metrics() const noexcept;
  // Metrics never sent: not finite, or longer than max_packet_bytes.
  [[nodiscard]] std::uint64_t dropped() const noexcept;
  // Datagrams the socket refused (ECONNREFUSED: nothing listens; EAGAIN: the
  // socket buffer is full). Their metrics are lost.
  [[nodiscard]] std::uint64_t send_errors() const noexcept;
  // Metrics whose tag set the guard refused, sent as the overflow series.
  [[nodiscard]] std::uint64_t overflowed() const noexcept;
  // Metrics sent with a name, tag name or tag value changed because it held
  // a character StatsD reserves (each replaced by '_').
  [[nodiscard]] std::uint64_t sanitised() const noexcept;

 private:
  friend class StatsdExporter;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct StatsdExporterOptions {
  // Time between two pushes of the registry. Default: 10 s. 0: no background
  // thread; pushes happen on export_now() and in the destructor.
  std::chrono::milliseconds interval{10000};
};

// Pushes a Registry through a StatsdClient: a counter as its increase since
// the previous push ("|c", nothing when it did not move), a gauge as its
// value ("|g"), a histogram as the increases of its count and sum
// ("<name>.count" and "<name>.sum", "|c") and, with kDogStatsd, of each
// bucket's cumulative count ("<name>.bucket|c|#...,le:<bound>", le:+Inf
// last, as Prometheus' _bucket series; a bucket that did not move is not
// sent). Plain kStatsd gets no buckets: it has no tags to carry the bound.
// Label values become tags (kDogStatsd) as they are: the Registry has
// already bounded them, so the client's guard is not asked again. A name with
// ':' (a recording-rule style name) is sent with '_' (see sanitised()). The
// first push sends every counter's whole value; a series' previous value is
// advanced only once its line is recorded, so a push that fails loses no
// change.
//
// Thread safety: export_now() is safe to call from any thread, also while
// the background thread pushes. Construct and destroy from one thread.
class StatsdExporter {
 public:
  // `registry` and `client` must outlive the exporter. Throws
  // InvalidArgument for a negative interval.
  StatsdExporter(const Registry& registry, StatsdClient& client,
                 StatsdExporterOptions options = {});
  // Stops the thread, pushes a last time and flushes the client.
  ~StatsdExporter();
  StatsdExporter(const StatsdExporter&) = delete;
  StatsdExporter& operator=(const StatsdExporter&) = delete;

  // Pushes the registry now and flushes the client.
  void export_now();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace prodsafe::metrics
