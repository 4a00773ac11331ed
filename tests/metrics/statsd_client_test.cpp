// StatsdClient: its options, its host, and sending when nobody listens.
#include "prodsafe/metrics/statsd.hpp"

#include <string>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "statsd_receiver.hpp"
#include "support/descriptor_limit.hpp"
#include "support/log_capture.hpp"

namespace prodsafe::metrics {
namespace {

using namespace std::chrono_literals;
using namespace statsd_testing;

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
  if (prodsafe::testing::kDescriptorLimitBreaksSanitizer) {
    GTEST_SKIP() << prodsafe::testing::kDescriptorLimitSkip;
  }
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

}  // namespace
}  // namespace prodsafe::metrics
