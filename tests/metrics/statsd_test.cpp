// StatsD / DogStatsD over a real UDP socket on loopback: the test binds the
// receiving socket itself and reads datagrams with poll() and a deadline.
#include "prodsafe/metrics/statsd.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "support/descriptor_limit.hpp"
#include "support/log_capture.hpp"

namespace prodsafe::metrics {
namespace {

using namespace std::chrono_literals;

constexpr auto kDeadline = 5s;  // how long a datagram that must arrive may take
constexpr auto kQuiet = 200ms;  // how long to listen to show nothing arrives
constexpr auto kNever = std::chrono::hours(1);

// The '\n'-separated lines of a datagram.
std::vector<std::string> split(const std::string& datagram) {
  std::vector<std::string> lines;
  std::size_t begin = 0;
  for (std::size_t end = 0; end != std::string::npos; begin = end + 1) {
    end = datagram.find('\n', begin);
    lines.push_back(datagram.substr(begin, end - begin));
  }
  return lines;
}

// A UDP socket bound to an ephemeral port on loopback.
class UdpReceiver {
 public:
  explicit UdpReceiver(bool ipv6 = false) {
    fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int size = 4 << 20;  // room for bursts while the test thread is busy
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    sockaddr_storage address{};
    socklen_t length = 0;
    if (ipv6) {
      auto& in6 = reinterpret_cast<sockaddr_in6&>(address);
      in6.sin6_family = AF_INET6;
      in6.sin6_addr = in6addr_loopback;
      length = sizeof in6;
    } else {
      auto& in4 = reinterpret_cast<sockaddr_in&>(address);
      in4.sin_family = AF_INET;
      in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      length = sizeof in4;
    }
    bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) == 0 &&
             ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    if (bound_) {
      port_ = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6&>(address).sin6_port
                         : reinterpret_cast<sockaddr_in&>(address).sin_port);
    }
  }
  ~UdpReceiver() { close(); }
  UdpReceiver(const UdpReceiver&) = delete;
  UdpReceiver& operator=(const UdpReceiver&) = delete;

  [[nodiscard]] bool bound() const { return bound_; }
  [[nodiscard]] int port() const { return port_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // The next datagram, or nothing when none arrives within `timeout`.
  std::optional<std::string> receive(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd ready{fd_, POLLIN, 0};
      const int polled = ::poll(&ready, 1, static_cast<int>(std::max(left.count(), 0L)));
      if (polled > 0) {
        std::array<char, 65536> buffer{};
        const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
        if (n >= 0) return std::string(buffer.data(), static_cast<std::size_t>(n));
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    }
  }

  // Datagrams until they hold `lines` lines in all, or the deadline passes.
  std::vector<std::string> datagrams(std::size_t lines,
                                     std::chrono::milliseconds timeout = kDeadline) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<std::string> received;
    std::size_t seen = 0;
    while (seen < lines) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      auto datagram = receive(std::max(left, 0ms));
      if (!datagram) break;
      seen += static_cast<std::size_t>(std::count(datagram->begin(), datagram->end(), '\n')) + 1;
      received.push_back(std::move(*datagram));
    }
    return received;
  }

  // The lines of datagrams(lines, timeout).
  std::vector<std::string> lines(std::size_t lines, std::chrono::milliseconds timeout = kDeadline) {
    std::vector<std::string> out;
    for (const std::string& datagram : datagrams(lines, timeout)) {
      for (std::string& line : split(datagram)) out.push_back(std::move(line));
    }
    return out;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  bool bound_ = false;
};

// Options that send at once to `receiver`, with a guard of the test's own.
StatsdOptions immediate(const UdpReceiver& receiver, MetricsCardinalityGuard& guard) {
  StatsdOptions options;
  options.port = receiver.port();
  options.flush_interval = 0ms;
  options.guard = &guard;
  return options;
}

template <class Exception, class Call>
std::string message_of(Call&& call) {
  try {
    call();
  } catch (const Exception& error) {
    return error.what();
  }
  ADD_FAILURE() << "nothing thrown";
  return {};
}

class StatsdTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(receiver_.bound()); }

  UdpReceiver receiver_;
  MetricsCardinalityGuard guard_;
};

TEST_F(StatsdTest, DogStatsdWireFormatOfEachType) {
  StatsdClient statsd(immediate(receiver_, guard_));
  statsd.counter("orders", 1, {{"side", "buy"}, {"symbol", "BTCUSDT"}});
  statsd.counter("fills");
  statsd.counter("cancels", -2.5);
  statsd.gauge("inflight", -3, {{"queue", "claims"}});
  statsd.timing("claim", 2500us, {{"effect", "order"}});
  statsd.histogram("batch_size", 17);
  statsd.distribution("slippage_bps", 0.25, {{"venue", "x"}});

  EXPECT_EQ(receiver_.lines(8), (std::vector<std::string>{
                                    "orders:1|c|#side:buy,symbol:BTCUSDT",
                                    "fills:1|c",
                                    "cancels:-2.5|c",
                                    "inflight:0|g|#queue:claims",
                                    "inflight:-3|g|#queue:claims",
                                    "claim:2.5|ms|#effect:order",
                                    "batch_size:17|h",
                                    "slippage_bps:0.25|d|#venue:x",
                                }));
  EXPECT_EQ(statsd.sent_metrics(), 7u);
  EXPECT_EQ(statsd.sent_packets(), 7u);
}

TEST_F(StatsdTest, PlainStatsdDropsTagsWithOneWarning) {
  prodsafe::testing::LogCapture logs;
  StatsdOptions options = immediate(receiver_, guard_);
  options.flavour = StatsdFlavour::kStatsd;
  StatsdClient statsd(options);
  statsd.counter("orders", 1, {{"side", "buy"}});
  statsd.gauge("inflight", 4, {{"queue", "claims"}});
  statsd.timing("claim", 12ms);
  statsd.histogram("batch_size", 17);
  statsd.distribution("slippage_bps", 0.25, {{"venue", "x"}});

  EXPECT_EQ(receiver_.lines(5), (std::vector<std::string>{
                                    "orders:1|c",
                                    "inflight:4|g",
                                    "claim:12|ms",
                                    "batch_size:17|h",
                                    "slippage_bps:0.25|h",
                                }));
  const auto lines = logs.lines();
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& line) {
                            return line.find("plain StatsD has no tags") != std::string::npos;
                          }),
            1)
      << logs.text();
}

TEST_F(StatsdTest, PlainStatsdSetsANegativeGaugeFromZeroInOneDatagram) {
  StatsdOptions options = immediate(receiver_, guard_);
  options.flavour = StatsdFlavour::kStatsd;
  StatsdClient statsd(options);
  statsd.gauge("temperature", -5);
  statsd.gauge("temperature", -0.0);  // "-0|g" would be a change of nothing

  const auto datagrams = receiver_.datagrams(3);
  ASSERT_EQ(datagrams.size(), 2u);
  EXPECT_EQ(datagrams[0], "temperature:0|g\ntemperature:-5|g");
  EXPECT_EQ(datagrams[1], "temperature:0|g");
  EXPECT_EQ(statsd.sent_metrics(), 2u);
}

TEST_F(StatsdTest, DogStatsdSetsANegativeGaugeFromZeroInOneDatagramToo) {
  // statsd_exporter and Telegraf read DogStatsD's "-3.5|g" as "decrease by
  // 3.5", like Etsy StatsD; the Datadog agent keeps a gauge's last value, so
  // "0|g" first is right for all of them.
  StatsdClient statsd(immediate(receiver_, guard_));
  statsd.gauge("temperature", -3.5, {{"room", "a"}});
  statsd.gauge("temperature", 2);

  const auto datagrams = receiver_.datagrams(3);
  ASSERT_EQ(datagrams.size(), 2u);
  EXPECT_EQ(datagrams[0], "temperature:0|g|#room:a\ntemperature:-3.5|g|#room:a");
  EXPECT_EQ(datagrams[1], "temperature:2|g");
  EXPECT_EQ(statsd.sent_metrics(), 2u);
}

TEST_F(StatsdTest, SampleRateSendsThatShareAndSaysSo) {
  StatsdOptions options = immediate(receiver_, guard_);
  options.flush_interval = kNever;
  StatsdClient statsd(options);
  for (int i = 0; i < 2000; ++i) statsd.counter("sampled", 1, {{"side", "buy"}}, 0.5);
  statsd.timing("always", 1ms, {}, 1.0);
  statsd.flush();

  const std::uint64_t sent = statsd.sent_metrics();
  EXPECT_GT(sent, 801u);  // 2000 draws at 0.5: 1000 +- 22 (sd)
  EXPECT_LT(sent, 1201u);
  const auto lines = receiver_.lines(sent);
  ASSERT_EQ(lines.size(), sent);
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    ASSERT_EQ(lines[i], "sampled:1|c|@0.5|#side:buy");
  }
  EXPECT_EQ(lines.back(), "always:1|ms");

  for (double bad : {0.0, -0.5, 1.5}) {
    EXPECT_NE(message_of<InvalidArgument>([&] {
                statsd.counter("x", 1, {}, bad);
              }).find("give a value in (0, 1]"),
              std::string::npos);
  }
}

TEST_F(StatsdTest, PrefixAndConstantTags) {
  StatsdOptions options = immediate(receiver_, guard_);
  options.prefix = "prodsafe";
  options.constant_tags = {{"env", "prod"}, {"region", "eu:west"}};
  StatsdClient statsd(options);
  statsd.counter("orders", 1, {{"side", "buy"}});
  statsd.gauge("inflight", 2);

  options.prefix = "prodsafe.";  // a trailing dot is not doubled
  options.constant_tags = {};
  StatsdClient dotted(options);
  dotted.counter("orders");

  EXPECT_EQ(receiver_.lines(3), (std::vector<std::string>{
                                    "prodsafe.orders:1|c|#side:buy,env:prod,region:eu_west",
                                    "prodsafe.inflight:2|g|#env:prod,region:eu_west",
                                    "prodsafe.orders:1|c",
                                }));
}

TEST_F(StatsdTest, BatchesLinesIntoDatagramsNeverOverMaxPacketBytes) {
  StatsdOptions options = immediate(receiver_, guard_);
  options.flush_interval = kNever;
  options.max_packet_bytes = 200;
  StatsdClient statsd(options);
  std::vector<std::string> sent;
  for (int i = 0; i < 300; ++i) {
    const std::string name = "batched." + std::string(static_cast<std::size_t>(i % 37), 'n');
    statsd.counter(name, i);
    sent.push_back(name + ":" + std::to_string(i) + "|c");
  }
  statsd.flush();

  const auto datagrams = receiver_.datagrams(sent.size());
  std::vector<std::string> received;
  for (const std::string& datagram : datagrams) {
    EXPECT_LE(datagram.size(), 200u);
    EXPECT_NE(datagram.back(), '\n');
    for (std::string& line : split(datagram)) received.push_back(std::move(line));
  }
  EXPECT_EQ(received, sent);
  // Full datagrams: each one was sent because the next line did not fit.
  EXPECT_LT(datagrams.size(), sent.size() / 4);
  EXPECT_EQ(statsd.sent_packets(), datagrams.size());
  EXPECT_EQ(statsd.sent_metrics(), sent.size());
}

TEST_F(StatsdTest, ALineLongerThanAPacketIsDroppedAndCounted) {
  StatsdOptions options = immediate(receiver_, guard_);
  options.max_packet_bytes = 64;
  StatsdClient statsd(options);
  statsd.counter(std::string(70, 'x'));
  statsd.gauge("nan", std::nan(""));
  statsd.counter("fits");

  EXPECT_EQ(receiver_.lines(1), std::vector<std::string>{"fits:1|c"});
  EXPECT_EQ(statsd.dropped(), 2u);
  EXPECT_EQ(statsd.sent_metrics(), 1u);
}

TEST_F(StatsdTest, ImmediateModeSendsEachMetricInItsOwnDatagram) {
  StatsdClient statsd(immediate(receiver_, guard_));
  for (int i = 0; i < 5; ++i) statsd.counter("immediate");

  for (int i = 0; i < 5; ++i) EXPECT_EQ(receiver_.receive(kDeadline), "immediate:1|c");
  EXPECT_EQ(statsd.sent_packets(), 5u);
}

TEST_F(StatsdTest, BufferedLinesWaitForFlush) {
  StatsdOptions options = immediate(receiver_, guard_);
  options.flush_interval = kNever;
  StatsdClient statsd(options);
  statsd.counter("buffered");
  statsd.gauge("buffered_too", 1);
  EXPECT_EQ(receiver_.receive(kQuiet), std::nullopt);
  EXPECT_EQ(statsd.sent_packets(), 0u);

  statsd.flush();
  EXPECT_EQ(receiver_.receive(kDeadline), "buffered:1|c\nbuffered_too:1|g");
  statsd.flush();  // nothing left: no empty datagram
  EXPECT_EQ(receiver_.receive(kQuiet), std::nullopt);
  EXPECT_EQ(statsd.sent_packets(), 1u);
}

TEST_F(StatsdTest, TheBackgroundThreadFlushesEveryInterval) {
  StatsdOptions options = immediate(receiver_, guard_);
  options.flush_interval = 20ms;
  StatsdClient statsd(options);
  statsd.counter("ticked");
  EXPECT_EQ(receiver_.receive(kDeadline), "ticked:1|c");
  statsd.counter("ticked_again");
  EXPECT_EQ(receiver_.receive(kDeadline), "ticked_again:1|c");
}

TEST_F(StatsdTest, TheDestructorSendsWhatIsBuffered) {
  {
    StatsdOptions options = immediate(receiver_, guard_);
    options.flush_interval = kNever;
    StatsdClient statsd(options);
    statsd.counter("last_words");
  }
  EXPECT_EQ(receiver_.receive(kDeadline), "last_words:1|c");
}

TEST_F(StatsdTest, TagValuesAreSanitisedAndCounted) {
  StatsdClient statsd(immediate(receiver_, guard_));
  statsd.counter("orders", 1, {{"venue", "a:b|c@d#e,f\ng"}, {"empty", ""}, {"path", "/x y"}});
  EXPECT_EQ(receiver_.lines(1),
            std::vector<std::string>{"orders:1|c|#venue:a_b_c_d_e_f_g,path:/x y"});
  EXPECT_EQ(statsd.sanitised(), 1u);
}

TEST_F(StatsdTest, ReservedCharactersInNamesAreReplacedCountedAndLogged) {
  // ':' is legal in a Prometheus name; refusing it lost the metric (and,
  // from the exporter, the whole push).
  prodsafe::testing::LogCapture logs;
  StatsdClient statsd(immediate(receiver_, guard_));
  statsd.counter("orders:placed");
  statsd.gauge("a\nb|c@d#e", 1);
  statsd.counter("orders", 1, {{"si|de", "buy"}});
  statsd.counter("clean");
  EXPECT_EQ(receiver_.lines(4), (std::vector<std::string>{
                                    "orders_placed:1|c",
                                    "a_b_c_d_e:1|g",
                                    "orders:1|c|#si_de:buy",
                                    "clean:1|c",
                                }));
  EXPECT_EQ(statsd.sanitised(), 3u);
  EXPECT_EQ(statsd.dropped(), 0u);
  EXPECT_NE(logs.text().find("orders:placed"), std::string::npos) << logs.text();
  EXPECT_NE(logs.text().find("orders_placed"), std::string::npos) << logs.text();

  // Nothing to send, and configuration given once, are still refused.
  EXPECT_NE(message_of<InvalidArgument>([&] { statsd.histogram("", 1); }).find("must not be empty"),
            std::string::npos);
  StatsdOptions options = immediate(receiver_, guard_);
  options.prefix = "prod#safe";
  EXPECT_NE(message_of<InvalidArgument>([&] {
              StatsdClient refused(options);
            }).find("prefix 'prod#safe' contains '#'"),
            std::string::npos);
  EXPECT_EQ(receiver_.receive(kQuiet), std::nullopt);
}

TEST_F(StatsdTest, ForbiddenTagNameIsSentAsTheOverflowSeries) {
  StatsdClient statsd(immediate(receiver_, guard_));
  statsd.counter("orders", 1, {{"order_id", "A-1"}, {"side", "buy"}});
  statsd.counter("orders", 1, {{"order_id", "A-2"}, {"side", "sell"}});
  statsd.counter("orders", 1, {{"side", "buy"}});

  EXPECT_EQ(receiver_.lines(3), (std::vector<std::string>{
                                    "orders:1|c|#order_id:__overflow__,side:__overflow__",
                                    "orders:1|c|#order_id:__overflow__,side:__overflow__",
                                    "orders:1|c|#side:buy",
                                }));
  EXPECT_EQ(statsd.overflowed(), 2u);
  EXPECT_EQ(guard_.errors(), 2u);
}

TEST_F(StatsdTest, TheGuardsLimitSendsFurtherTagSetsToTheOverflowSeries) {
  MetricsCardinalityGuard guard({.max_label_sets = 2});
  StatsdOptions options = immediate(receiver_, guard);
  options.prefix = "prodsafe";
  StatsdClient statsd(options);
  for (const char* symbol : {"BTC", "ETH", "BTC", "SOL"}) {
    statsd.counter("orders", 1, {{"symbol", symbol}});
  }
  EXPECT_EQ(receiver_.lines(4), (std::vector<std::string>{
                                    "prodsafe.orders:1|c|#symbol:BTC",
                                    "prodsafe.orders:1|c|#symbol:ETH",
                                    "prodsafe.orders:1|c|#symbol:BTC",
                                    "prodsafe.orders:1|c|#symbol:__overflow__",
                                }));
  EXPECT_EQ(guard.label_sets("prodsafe_orders"), 2u);
}

TEST_F(StatsdTest, AStrictGuardThrowsCardinalityViolationAndSendsNothing) {
  MetricsCardinalityGuard strict({.strict_mode = true});
  StatsdClient statsd(immediate(receiver_, strict));
  try {
    statsd.counter("orders", 1, {{"order_id", "A-1"}});
    FAIL() << "a forbidden tag was accepted";
  } catch (const CardinalityViolation& violation) {
    EXPECT_EQ(violation.metric(), "orders");
    EXPECT_NE(std::string(violation.what()).find("order_id"), std::string::npos);
  }
  EXPECT_EQ(receiver_.receive(kQuiet), std::nullopt);
  EXPECT_EQ(statsd.sent_metrics(), 0u);
}

// StatsD is not the store: a host that does not resolve is a configuration
// to fix and a socket that cannot be had a local failure; neither is retryable.
TEST(StatsdClientTest, AnUnresolvableHostIsAConfigErrorNamingIt) {
  StatsdOptions options;
  options.host = "no-such-host.invalid";
  try {
    StatsdClient statsd(options);
    FAIL() << "resolved";
  } catch (const ConfigError& error) {
    EXPECT_FALSE(error.retryable());
    const std::string message = error.what();
    EXPECT_NE(message.find("no-such-host.invalid:8125"), std::string::npos) << message;
    EXPECT_NE(message.find("check the host name and DNS"), std::string::npos) << message;
  } catch (const std::exception& error) {
    FAIL() << "expected a ConfigError, got: " << error.what();
  }
}

TEST(StatsdClientTest, NoDescriptorForTheSocketIsAnIoError) {
  StatsdOptions options;
  options.host = "127.0.0.1";
  options.flush_interval = 0ms;
  try {
    prodsafe::testing::DescriptorLimit limit(0);
    ASSERT_TRUE(limit.ok());
    StatsdClient statsd(options);
    FAIL() << "opened a socket";
  } catch (const IoError& error) {
    EXPECT_FALSE(error.retryable());
    EXPECT_NE(std::string(error.what()).find("127.0.0.1:8125"), std::string::npos) << error.what();
  } catch (const std::exception& error) {
    FAIL() << "expected an IoError, got: " << error.what();
  }
}

TEST(StatsdClientTest, OptionsOutOfRangeAreInvalidArguments) {
  StatsdOptions options;
  options.port = 0;
  EXPECT_THROW(StatsdClient{options}, InvalidArgument);
  options.port = 8125;
  options.max_packet_bytes = 65508;
  EXPECT_THROW(StatsdClient{options}, InvalidArgument);
  options.max_packet_bytes = 1432;
  options.flush_interval = -1ms;
  EXPECT_THROW(StatsdClient{options}, InvalidArgument);
}

TEST(StatsdClientTest, SendingToAClosedPortCountsSendErrorsWithoutThrowing) {
  prodsafe::testing::LogCapture logs;
  MetricsCardinalityGuard guard;
  StatsdOptions options;
  {
    UdpReceiver gone;
    ASSERT_TRUE(gone.bound());
    options = immediate(gone, guard);
  }  // the port is closed now: the kernel answers with ICMP port unreachable
  StatsdClient statsd(options);
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (statsd.send_errors() == 0 && std::chrono::steady_clock::now() < deadline) {
    EXPECT_NO_THROW(statsd.counter("unheard"));
    std::this_thread::yield();
  }
  EXPECT_GT(statsd.send_errors(), 0u);
  EXPECT_NE(logs.text().find("Connection refused"), std::string::npos) << logs.text();
}

TEST_F(StatsdTest, ConcurrentSendersLoseNothingOnLoopback) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  StatsdOptions options = immediate(receiver_, guard_);
  options.flush_interval = 5ms;
  StatsdClient statsd(options);
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&statsd, t] {
      const std::string tag = std::to_string(t);
      for (int i = 0; i < kPerThread; ++i) {
        statsd.counter("concurrent", 1, {{"sender", tag}});
      }
    });
  }
  // Drain while the senders run, so no burst outgrows the socket's buffer.
  std::vector<std::string> datagrams;
  std::thread drain([&] { datagrams = receiver_.datagrams(kThreads * kPerThread, 2 * kDeadline); });
  for (auto& sender : senders) sender.join();
  statsd.flush();
  drain.join();

  std::array<int, kThreads> per_sender{};
  std::size_t lines = 0;
  for (const std::string& datagram : datagrams) {
    EXPECT_LE(datagram.size(), options.max_packet_bytes);
    for (const std::string& line : split(datagram)) {
      ASSERT_TRUE(line.starts_with("concurrent:1|c|#sender:")) << line;
      ++per_sender.at(static_cast<std::size_t>(line.back() - '0'));
      ++lines;
    }
  }
  EXPECT_EQ(lines, static_cast<std::size_t>(kThreads * kPerThread));
  for (int count : per_sender) EXPECT_EQ(count, kPerThread);
  EXPECT_EQ(statsd.sent_metrics(), static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(statsd.send_errors(), 0u);
}

TEST(StatsdClientTest, SendsOverIpv6) {
  UdpReceiver receiver(/*ipv6=*/true);
  if (!receiver.bound()) GTEST_SKIP() << "no IPv6 loopback here";
  MetricsCardinalityGuard guard;
  StatsdOptions options = immediate(receiver, guard);
  options.host = "::1";
  StatsdClient statsd(options);
  statsd.counter("over_ipv6");
  EXPECT_EQ(receiver.receive(kDeadline), "over_ipv6:1|c");
}

class StatsdExporterTest : public StatsdTest {
 protected:
  StatsdOptions buffered() {
    StatsdOptions options = immediate(receiver_, guard_);
    options.flush_interval = kNever;  // the exporter flushes after each push
    return options;
  }

  MetricsCardinalityGuard registry_guard_;
  Registry registry_{&registry_guard_};
};

TEST_F(StatsdExporterTest, CountersAsDeltasGaugesAsValuesHistogramsAsCountAndSum) {
  StatsdClient statsd(buffered());
  StatsdExporter exporter(registry_, statsd, {.interval = 0ms});
  auto& orders = registry_.counter("orders_total", "Orders.", {"side"});
  auto& inflight = registry_.gauge("inflight", "In flight.");
  auto& latency = registry_.histogram("latency_seconds", "Latency.", {"op"}, {0.1, 1});

  orders.labels({"buy"}).inc(3);
  inflight.labels({}).set(7);
  latency.labels({"claim"}).observe(0.5);
  latency.labels({"claim"}).observe(1.5);
  exporter.export_now();
  // Buckets as the increases of their cumulative counts, tagged le like
  // Prometheus' (a bucket that did not move is not sent).
  EXPECT_EQ(receiver_.lines(6), (std::vector<std::string>{
                                    "inflight:7|g",
                                    "latency_seconds.count:2|c|#op:claim",
                                    "latency_seconds.sum:2|c|#op:claim",
                                    "latency_seconds.bucket:1|c|#op:claim,le:1",
                                    "latency_seconds.bucket:2|c|#op:claim,le:+Inf",
                                    "orders_total:3|c|#side:buy",
                                }));

  orders.labels({"buy"}).inc(2);
  latency.labels({"claim"}).observe(0.25);
  exporter.export_now();
  EXPECT_EQ(receiver_.lines(6), (std::vector<std::string>{
                                    "inflight:7|g",
                                    "latency_seconds.count:1|c|#op:claim",
                                    "latency_seconds.sum:0.25|c|#op:claim",
                                    "latency_seconds.bucket:1|c|#op:claim,le:1",
                                    "latency_seconds.bucket:1|c|#op:claim,le:+Inf",
                                    "orders_total:2|c|#side:buy",
                                }));

  inflight.labels({}).set(-1);
  exporter.export_now();  // counters and histograms did not move: nothing for them
  EXPECT_EQ(receiver_.receive(kDeadline), "inflight:0|g\ninflight:-1|g");
  EXPECT_EQ(receiver_.receive(kQuiet), std::nullopt);
}

TEST_F(StatsdExporterTest, PlainStatsdGetsNoBucketsForItHasNoTagsToCarryTheBound) {
  StatsdOptions options = buffered();
  options.flavour = StatsdFlavour::kStatsd;
  StatsdClient statsd(options);
  StatsdExporter exporter(registry_, statsd, {.interval = 0ms});
  registry_.histogram("latency_seconds", "Latency.", {}, {0.1, 1}).labels({}).observe(0.5);
  exporter.export_now();
  EXPECT_EQ(receiver_.lines(2), (std::vector<std::string>{
                                    "latency_seconds.count:1|c",
                                    "latency_seconds.sum:0.5|c",
                                }));
}

TEST_F(StatsdExporterTest, AColonInAMetricNameIsReplacedAndThePushGoesOn) {
  // A recording-rule style name (legal in Prometheus) aborted the whole push
  // and lost the change of every series visited before it.
  StatsdClient statsd(buffered());
  StatsdExporter exporter(registry_, statsd, {.interval = 0ms});
  registry_.counter("a_total", "A.").labels({}).inc(1);
  registry_.counter("job:orders:rate_total", "Orders.").labels({}).inc(2);
  registry_.counter("z_total", "Z.").labels({}).inc(3);
  exporter.export_now();
  auto lines = receiver_.lines(3);
  std::erase_if(lines, [](const std::string& line) { return line.starts_with("prodsafe_"); });
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "a_total:1|c",
                       "job_orders_rate_total:2|c",
                       "z_total:3|c",
                   }));
  EXPECT_EQ(statsd.sanitised(), 1u);
  registry_.counter("job:orders:rate_total", "Orders.").labels({}).inc(1);
  exporter.export_now();
  EXPECT_EQ(receiver_.receive(kDeadline), "job_orders_rate_total:1|c") << "only the change";
}

TEST_F(StatsdExporterTest, LabelValuesBecomeTagsWithoutTheClientsGuard) {
  MetricsCardinalityGuard strict({.strict_mode = true});
  StatsdOptions options = buffered();
  options.guard = &strict;  // would throw on order_id if the exporter asked it
  StatsdClient statsd(options);
  StatsdExporter exporter(registry_, statsd, {.interval = 0ms});
  registry_.counter("escaped_total", "Escapes.", {"venue"}).labels({"a\"b\\c\nd"}).inc();
  // The registry's warning-mode guard only logs order_id (issue 13): the
  // series keeps its value, and the exporter must not take the client's
  // strict guard's word over it.
  registry_.counter("refused_total", "Refused.", {"order_id"}).labels({"A-1"}).inc();

  EXPECT_NO_THROW(exporter.export_now());
  // One push fits one datagram; the registry's own prodsafe_metrics_* lines
  // (its guard logged order_id) are not this test's business.
  const auto datagram = receiver_.receive(kDeadline);
  ASSERT_TRUE(datagram);
  std::vector<std::string> lines;
  for (const std::string& line : split(*datagram)) {
    if (!line.starts_with("prodsafe_metrics_")) lines.push_back(line);
  }
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "escaped_total:1|c|#venue:a\"b\\c_d",
                       "refused_total:1|c|#order_id:A-1",
                   }));
}

TEST_F(StatsdExporterTest, PushesInTheBackgroundAndOnceMoreWhenDestroyed) {
  StatsdClient statsd(buffered());
  auto& jobs = registry_.counter("jobs_total", "Jobs.");
  jobs.labels({}).inc();
  {
    StatsdExporter exporter(registry_, statsd, {.interval = 20ms});
    EXPECT_EQ(receiver_.receive(kDeadline), "jobs_total:1|c");
    jobs.labels({}).inc(4);
  }
  // The background push may or may not have sent the 4 before the destructor:
  // either way exactly 4 more arrive, in one line.
  EXPECT_EQ(receiver_.receive(kDeadline), "jobs_total:4|c");
  EXPECT_EQ(receiver_.receive(kQuiet), std::nullopt);
}

}  // namespace
}  // namespace prodsafe::metrics
