// Test-only helpers for the alert stream tests: a fixture with the suite's
// private redis-server and a registry of the test's own, and polls with a
// deadline.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "prodsafe/metrics/cardinality_guard.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/redis/client.hpp"
#include "support/redis_fixture.hpp"

namespace prodsafe::alerts::testing {

// Polls `done` every 5 ms until it is true or `deadline` passes; returns its
// last answer.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class AlertStreamTest : public prodsafe::testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();  // starts the suite's server
    client = shared_client();
  }

  static std::shared_ptr<redis::Client> shared_client(redis::Options options = short_timeouts()) {
    return make_client(std::move(options));
  }

  // Every timeout of the client set to `timeout`, and no reconnect backoff
  // (a test that restarts the server writes again at once).
  static redis::Options timeouts(std::chrono::milliseconds timeout) {
    redis::Options options = short_timeouts();
    options.connect_timeout = timeout;
    options.command_timeout = timeout;
    options.pool_checkout_timeout = timeout;
    options.reconnect_backoff_initial = std::chrono::milliseconds(0);
    return options;
  }

  // The value of one series in the test's registry, or -1 when absent.
  [[nodiscard]] double metric(const std::string& series) const {
    const std::string text = registry.serialize();
    const std::string needle = "\n" + series + " ";
    const std::size_t at = text.find(needle);
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + needle.size()));
  }

  [[nodiscard]] double dropped_metric(const std::string& reason) const {
    return metric("prodsafe_alert_stream_dropped_total{reason=\"" + reason + "\"}");
  }

  metrics::MetricsCardinalityGuard guard;
  metrics::Registry registry{&guard};
  std::shared_ptr<redis::Client> client;  // made in SetUp()
};

}  // namespace prodsafe::alerts::testing
