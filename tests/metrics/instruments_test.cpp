// prodsafe's own instruments (docs/metrics.md): each module records what it
// does in the registry its options name, through the cardinality guard.
#include <malloc.h>

#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// GCC ships no <sanitizer/allocator_interface.h>; the runtimes of both
// sanitizers define this function.
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

#include <gtest/gtest.h>

#include "idempotency/store_harness.hpp"
#include "prodsafe/breaker/circuit_breaker.hpp"
#include "prodsafe/breaker/in_memory_breaker_store.hpp"
#include "prodsafe/core/clock.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/idempotency/in_memory_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/retry/anomaly_detector.hpp"
#include "prodsafe/retry/executor.hpp"
#include "prodsafe/retry/retry_budget.hpp"
#include "prodsafe/retry/spike_detector.hpp"
#include "support/failing_effect_store.hpp"

namespace prodsafe {
namespace {

using namespace std::chrono_literals;

// The value of one series in the registry's exposition, or -1 when absent.
double value_of(const metrics::Registry& registry, const std::string& series) {
  const std::string text = registry.serialize();
  const std::string needle = "\n" + series + " ";
  const std::size_t at = text.find(needle);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + needle.size()));
}

class IdempotencyInstrumentsTest : public ::testing::Test {
 protected:
  ManualClock clock;
  testing::TempDir journal;
  metrics::MetricsCardinalityGuard guard;
  metrics::Registry registry{&guard};
  std::shared_ptr<testing::FailingEffectStore> store =
      std::make_shared<testing::FailingEffectStore>(
          std::make_shared<idempotency::InMemoryEffectStore>(&clock));
  idempotency::SideEffectWrapper wrapper{store,
                                         {.renew_leases = false,
                                          .commit_attempts = 1,
                                          .journal_directory = journal.path().string(),
                                          .per_type = {{"PNL_WRITE", {.fail_open = true}}},
                                          .clock = &clock,
                                          .metrics = &registry}};

  double outcome(const std::string& type, const std::string& outcome) const {
    return value_of(registry, "prodsafe_idempotency_outcomes_total{effect_type=\"" + type +
                                  "\",outcome=\"" + outcome + "\"}");
  }
};

TEST_F(IdempotencyInstrumentsTest, CountsEachOutcomeByEffectType) {
  using idempotency::EffectType;
  const auto place = [] { return std::string("filled"); };
  wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o-1", place);
  wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o-1", place);
  wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o-1", place);
  wrapper.execute_once(EffectType::LEDGER_WRITE, "l-1", place);
  EXPECT_THROW(wrapper.execute_once(EffectType::LEDGER_WRITE, "l-2",
                                    []() -> std::string { throw std::runtime_error("boom"); }),
               std::runtime_error);
  EXPECT_EQ(outcome("ORDER_PLACEMENT", "executed"), 1);
  EXPECT_EQ(outcome("ORDER_PLACEMENT", "duplicate"), 2);
  EXPECT_EQ(outcome("ORDER_PLACEMENT", "conflict"), 0);
  EXPECT_EQ(outcome("LEDGER_WRITE", "executed"), 1);
  EXPECT_EQ(outcome("LEDGER_WRITE", "effect_error"), 1);
  // The counters behind stats() are the same events.
  EXPECT_EQ(wrapper.stats().duplicates, 2U);
  EXPECT_EQ(wrapper.stats().executed, 2U);
}

TEST_F(IdempotencyInstrumentsTest, CountsStoreErrorsFailOpenAndCommitPending) {
  using idempotency::EffectType;
  store->fail_claims = 2;
  EXPECT_THROW(wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o-2", [] { return 1; }),
               StoreUnavailable);
  const auto unprotected = wrapper.execute_once(EffectType::PNL_WRITE, "p-1", [] { return 1; });
  EXPECT_TRUE(unprotected.unprotected);
  EXPECT_EQ(value_of(registry,
                     "prodsafe_idempotency_store_errors_total{effect_type=\"ORDER_PLACEMENT\"}"),
            1);
  EXPECT_EQ(
      value_of(registry, "prodsafe_idempotency_store_errors_total{effect_type=\"PNL_WRITE\"}"), 1);
  EXPECT_EQ(outcome("PNL_WRITE", "fail_open"), 1);
  EXPECT_EQ(outcome("ORDER_PLACEMENT", "executed"), 0);

  store->fail_commits = 1;
  const auto pending = wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o-3", [] { return 7; });
  EXPECT_TRUE(pending.commit_pending);
  EXPECT_EQ(outcome("ORDER_PLACEMENT", "commit_pending"), 1);
  EXPECT_EQ(wrapper.flush_journal(), 0U);
  EXPECT_EQ(value_of(registry, "prodsafe_idempotency_journal_committed_total"), 1);
}

TEST(BreakerInstrumentsTest, StateTransitionsAndRejections) {
  ManualClock clock;
  metrics::Registry registry;
  breaker::CircuitBreaker breaker(
      std::make_shared<breaker::InMemoryBreakerStore>(&clock), "exchange",
      {.failure_threshold = 3, .break_duration = 10s, .clock = &clock, .metrics = &registry});
  const auto state = [&](const char* name) {
    return value_of(registry, std::string("prodsafe_breaker_state{breaker=\"exchange\",state=\"") +
                                  name + "\"}");
  };
  EXPECT_EQ(state("closed"), 1);
  EXPECT_EQ(state("open"), 0);
  for (int i = 0; i < 3; ++i) breaker.record_failure();
  EXPECT_EQ(state("closed"), 0);
  EXPECT_EQ(state("open"), 1);
  EXPECT_FALSE(breaker.can_retry().allowed);
  EXPECT_FALSE(breaker.can_retry().allowed);
  EXPECT_EQ(value_of(registry, "prodsafe_breaker_rejections_total{breaker=\"exchange\"}"), 2);
  EXPECT_EQ(
      value_of(registry, "prodsafe_breaker_transitions_total{breaker=\"exchange\",to=\"open\"}"),
      1);
  clock.advance(11s);
  EXPECT_TRUE(breaker.can_retry().allowed);  // the half-open probe
  EXPECT_EQ(state("half_open"), 1);
  breaker.record_success();
  EXPECT_EQ(state("closed"), 1);
  EXPECT_EQ(
      value_of(registry, "prodsafe_breaker_transitions_total{breaker=\"exchange\",to=\"closed\"}"),
      1);
}

TEST(RetryInstrumentsTest, AttemptsRetriesAndWhyLoopsGaveUp) {
  ManualClock clock;
  metrics::Registry registry;
  const retry::RetryPolicy policy{
      .max_attempts = 3, .clock = &clock, .job_type = "payments", .metrics = &registry};
  EXPECT_THROW(retry::run(policy, []() -> int { throw std::runtime_error("down"); }),
               std::runtime_error);
  EXPECT_EQ(value_of(registry, "prodsafe_retry_attempts_total{job_type=\"payments\"}"), 3);
  EXPECT_EQ(value_of(registry, "prodsafe_retry_retries_total{job_type=\"payments\"}"), 2);
  EXPECT_EQ(value_of(registry,
                     "prodsafe_retry_gave_up_total{job_type=\"payments\",reason=\"exhausted\"}"),
            1);

  EXPECT_THROW(retry::run(policy, []() -> int { throw InvalidArgument("bad order"); }),
               InvalidArgument);
  EXPECT_EQ(
      value_of(registry,
               "prodsafe_retry_gave_up_total{job_type=\"payments\",reason=\"not_retryable\"}"),
      1);

  retry::RetryPolicy gated = policy;
  gated.allow_retry = [] { return false; };
  EXPECT_THROW(retry::run(gated, []() -> int { throw std::runtime_error("down"); }),
               std::runtime_error);
  EXPECT_EQ(
      value_of(registry, "prodsafe_retry_gave_up_total{job_type=\"payments\",reason=\"breaker\"}"),
      1);
  EXPECT_EQ(value_of(registry, "prodsafe_retry_attempts_total{job_type=\"payments\"}"), 5);
  // A success counts its attempts and gives up on nothing.
  int calls = 0;
  EXPECT_EQ(retry::run(policy,
                       [&] {
                         if (++calls < 2) throw std::runtime_error("once");
                         return 1;
                       }),
            1);
  EXPECT_EQ(value_of(registry, "prodsafe_retry_attempts_total{job_type=\"payments\"}"), 7);
  EXPECT_EQ(value_of(registry, "prodsafe_retry_retries_total{job_type=\"payments\"}"), 3);
}

// A policy's series are its registry's: a registry made where a dead one
// lived gets its own, not the dead one's.
TEST(RetryInstrumentsTest, ARegistryAtADeadOnesAddressGetsItsOwnSeries) {
  alignas(metrics::Registry) unsigned char storage[sizeof(metrics::Registry)];
  ManualClock clock;
  const auto fail_twice = [](metrics::Registry* registry, ManualClock* on) {
    const retry::RetryPolicy policy{
        .max_attempts = 2, .clock = on, .job_type = "reused", .metrics = registry};
    EXPECT_THROW(retry::run(policy, []() -> int { throw std::runtime_error("down"); }),
                 std::runtime_error);
  };
  auto* first = new (storage) metrics::Registry;
  fail_twice(first, &clock);
  EXPECT_EQ(value_of(*first, "prodsafe_retry_attempts_total{job_type=\"reused\"}"), 2);
  first->~Registry();
  auto* second = new (storage) metrics::Registry;
  fail_twice(second, &clock);
  EXPECT_EQ(value_of(*second, "prodsafe_retry_attempts_total{job_type=\"reused\"}"), 2);
  second->~Registry();
}

// Bytes the process holds on the heap (the sanitizers replace malloc, and
// mallinfo2 with it).
std::int64_t heap_in_use() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return static_cast<std::int64_t>(__sanitizer_get_current_allocated_bytes());
#else
  return static_cast<std::int64_t>(mallinfo2().uordblks);
#endif
}

// A policy's series live as long as the policy: a process that makes registries
// and retry loops one after another (a test suite, a per-tenant registry) does
// not keep a set of series for every registry it ever made.
TEST(RetryInstrumentsTest, ManyRegistriesComeAndGoWithoutGrowth) {
  ManualClock clock;
  const auto fail_twice_in_a_new_registry = [&clock] {
    metrics::MetricsCardinalityGuard guard;
    metrics::Registry registry(&guard);
    const retry::RetryPolicy policy{
        .max_attempts = 2, .clock = &clock, .job_type = "churn", .metrics = &registry};
    EXPECT_THROW(retry::run(policy, []() -> int { throw std::runtime_error("down"); }),
                 std::runtime_error);
    EXPECT_EQ(value_of(registry, "prodsafe_retry_attempts_total{job_type=\"churn\"}"), 2);
  };
  for (int i = 0; i < 50; ++i) fail_twice_in_a_new_registry();  // the logger, first-use statics
  const std::int64_t before = heap_in_use();
  constexpr int kRegistries = 2000;
  for (int i = 0; i < kRegistries; ++i) fail_twice_in_a_new_registry();
  // Kept per registry, the series would take several hundred bytes each.
  EXPECT_LT(heap_in_use() - before, 32 * 1024);
}

TEST(RetryInstrumentsTest, SpikesAndAnomaliesAreCounted) {
  ManualClock clock;
  metrics::Registry registry;
  retry::RetrySpikeDetector spikes({.window = 10s,
                                    .baseline_windows = 2,
                                    .min_count = 5,
                                    .clock = &clock,
                                    .job_type = "orders",
                                    .metrics = &registry});
  for (int window = 0; window < 3; ++window) {
    spikes.record_retry(1);
    clock.advance(10s);
  }
  int alerts = 0;
  for (int i = 0; i < 20; ++i) alerts += spikes.record_retry() ? 1 : 0;
  ASSERT_EQ(alerts, 1);
  EXPECT_EQ(value_of(registry, "prodsafe_retry_spikes_total{job_type=\"orders\"}"), 1);

  retry::RetryAnomalyDetector anomalies({.excessive_attempts = 4, .metrics = &registry});
  retry::RetryWindow window;
  window.job_id = "j-1";
  window.job_type = "orders";
  window.attempts = 6;
  ASSERT_EQ(anomalies.record_window(window).size(), 1U);
  EXPECT_EQ(value_of(registry,
                     "prodsafe_retry_anomalies_total{job_type=\"orders\",type=\"excessive_"
                     "attempts\"}"),
            1);
  EXPECT_EQ(anomalies.anomalies(), 1U);
}

}  // namespace
}  // namespace prodsafe
