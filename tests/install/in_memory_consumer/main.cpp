// Built against an installed prodsafe from the Redis-free components: runs an
// effect once through the in-memory store, retries a call, keeps a retry
// window in this process, trips an in-memory circuit breaker, and asks the
// metrics guard about a label set.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include <prodsafe/breaker/circuit_breaker.hpp>
#include <prodsafe/breaker/in_memory_breaker_store.hpp>
#include <prodsafe/idempotency/in_memory_effect_store.hpp>
#include <prodsafe/idempotency/side_effect_wrapper.hpp>
#include <prodsafe/metrics/cardinality_guard.hpp>
#include <prodsafe/retry/executor.hpp>
#include <prodsafe/retry/in_memory_window_store.hpp>
#include <prodsafe/retry/retry_window_tracker.hpp>

int main(int argc, char** argv) {
  namespace idempotency = prodsafe::idempotency;
  // The journal is written only when a commit fails; keep it out of /var/tmp.
  const std::filesystem::path journal = argc > 1 ? argv[1] : "journal";
  idempotency::SideEffectWrapper wrapper(std::make_shared<idempotency::InMemoryEffectStore>(),
                                         {.journal_directory = journal.string()});
  int runs = 0;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto [executed, result] = wrapper.execute_once(idempotency::EffectType::ORDER_PLACEMENT,
                                                         "order-1", [&] { return ++runs; });
    if (result != 1) return EXIT_FAILURE;
  }

  int calls = 0;
  const int answer = prodsafe::retry::run({.max_attempts = 3}, [&] {
    if (++calls < 2) throw std::runtime_error("transient");
    return 42;
  });

  prodsafe::retry::RetryWindowTracker tracker(
      std::make_shared<prodsafe::retry::InMemoryRetryWindowStore>());
  tracker.start_window("job-1", "settlement");
  tracker.increment_attempt("job-1");
  const int window_attempts = tracker.close_window("job-1", true).attempts;

  namespace breaker = prodsafe::breaker;
  breaker::CircuitBreaker circuit(std::make_shared<breaker::InMemoryBreakerStore>(), "exchange",
                                  {.failure_threshold = 2});
  circuit.record_failure();
  circuit.record_failure();
  const bool tripped = !circuit.can_retry().allowed;

  prodsafe::metrics::MetricsCardinalityGuard guard;
  const bool labels_ok = guard.validate_labels("order_latency", {{"symbol", "BTCUSDT"}}).is_valid;

  std::cout << "effect runs " << runs << ", retry calls " << calls << ", answer " << answer
            << ", window attempts " << window_attempts << ", breaker "
            << (tripped ? "open" : "closed") << ", labels " << (labels_ok ? "ok" : "refused")
            << "\n";
  return runs == 1 && calls == 2 && answer == 42 && window_attempts == 2 && tripped && labels_ok
             ? EXIT_SUCCESS
             : EXIT_FAILURE;
}
