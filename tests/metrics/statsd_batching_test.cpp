// StatsdClient: how lines are batched into datagrams and when they are sent.
#include "prodsafe/metrics/statsd.hpp"

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "statsd_receiver.hpp"
#include "support/log_capture.hpp"

namespace prodsafe::metrics {
namespace {

using namespace std::chrono_literals;
using namespace statsd_testing;

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

}  // namespace
}  // namespace prodsafe::metrics
