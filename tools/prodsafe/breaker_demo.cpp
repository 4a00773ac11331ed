// The breaker part of `prodsafe demo`: a dependency fails, the fleet-wide
// breaker opens at its threshold, refuses calls, and recovers by itself.
#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "commands.hpp"
#include "prodsafe/breaker/circuit_breaker.hpp"
#include "prodsafe/breaker/redis_breaker_store.hpp"

namespace prodsafe::cli {

BreakerDemoReport run_breaker_demo(std::shared_ptr<redis::Client> client) {
  using namespace std::chrono_literals;
  BreakerDemoReport report;
  auto hooks = std::make_shared<alerts::AlertHooks>();
  hooks->add_log_hook(
      [&report](std::string_view type, std::string_view message, const alerts::AlertContext&) {
        ++report.alerts;
        fmt::print("  ALERT {}: {}\n", type, message);
      });
  const std::string job_type = fmt::format("demo-exchange-{:08x}", std::random_device{}());
  breaker::CircuitBreaker breaker(std::make_shared<breaker::RedisBreakerStore>(client), job_type,
                                  {.failure_threshold = 5,
                                   .time_window = 10s,
                                   .break_duration = 1s,
                                   .staleness = 200ms,
                                   .alert_hooks = hooks});
  bool exchange_up = false;
  auto call_exchange = [&] {
    if (!breaker.can_retry().allowed) {
      ++report.refused;
      return;
    }
    ++report.calls;
    if (exchange_up) {
      breaker.record_success();
    } else {
      ++report.failures;
      breaker.record_failure();
    }
  };
  fmt::print("the exchange is down; 20 calls, breaker threshold 5 failures:\n");
  for (int i = 0; i < 20; ++i) call_exchange();
  fmt::print("{} calls reached the exchange and failed, {} were refused by the open breaker\n",
             report.failures, report.refused);
  report.opened_at_threshold = report.failures == 5 && report.refused == 15;
  fmt::print("the exchange comes back; after the 1 s break one probe is let through:\n");
  exchange_up = true;
  std::this_thread::sleep_for(1100ms);
  call_exchange();
  call_exchange();
  report.recovered = breaker.state() == breaker::State::kClosed;
  fmt::print("breaker is {} again\n", breaker::to_string(breaker.state()));
  return report;
}

}  // namespace prodsafe::cli
