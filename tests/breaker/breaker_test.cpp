// The breaker's state machine with a ManualClock and the in-memory store.
#include "prodsafe/breaker/circuit_breaker.hpp"

#include <algorithm>
#include <atomic>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "print_state.hpp"
#include "prodsafe/breaker/in_memory_breaker_store.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/retry/executor.hpp"

namespace prodsafe::breaker {
namespace {

using namespace std::chrono_literals;

struct Fired {
  std::string type;
  std::string message;
  alerts::AlertContext context;
};

// Fails every operation while `down` is set.
class FlakyStore final : public BreakerStore {
 public:
  explicit FlakyStore(std::shared_ptr<BreakerStore> inner) : inner_(std::move(inner)) {}
  bool down = false;
  using BreakerStore::control;
  using BreakerStore::record;
  Snapshot record(std::string_view j, Outcome o, const BreakerRules& r, PermitId p) override {
    check();
    return inner_->record(j, o, r, p);
  }
  Snapshot acquire(std::string_view j, const BreakerRules& r) override {
    check();
    return inner_->acquire(j, r);
  }
  Snapshot control(std::string_view j, Command c, const BreakerRules& r,
                   std::string_view actor) override {
    check();
    return inner_->control(j, c, r, actor);
  }
  Snapshot read(std::string_view j, const BreakerRules& r) override {
    check();
    return inner_->read(j, r);
  }
  // Watching never throws: it goes on through an outage.
  Subscription watch(std::string_view j, TransitionCallback callback) override {
    return inner_->watch(j, std::move(callback));
  }

 private:
  void check() const {
    if (down) throw StoreUnavailable("injected: store down");
  }
  std::shared_ptr<BreakerStore> inner_;
};

class BreakerTest : public ::testing::Test {
 protected:
  ManualClock clock;
  std::shared_ptr<FlakyStore> store =
      std::make_shared<FlakyStore>(std::make_shared<InMemoryBreakerStore>(&clock));
  std::shared_ptr<alerts::AlertHooks> hooks = std::make_shared<alerts::AlertHooks>();
  std::vector<Fired> fired;

  void SetUp() override {
    hooks->add_event_hook([this](std::string_view type, std::string_view message,
                                 const alerts::AlertContext& context) {
      fired.push_back({std::string(type), std::string(message), context});
    });
  }
  CircuitBreakerOptions options() {
    return {.failure_threshold = 5,
            .time_window = 60s,
            .break_duration = 10s,
            .break_multiplier = 2.0,
            .max_break_duration = 30s,
            .max_half_open_wait = 5s,
            .alert_hooks = hooks,
            .clock = &clock};
  }
  std::vector<std::string> types() const {
    std::vector<std::string> out;
    for (const Fired& f : fired) out.push_back(f.type);
    return out;
  }
};

TEST_F(BreakerTest, OpensAtTheThresholdAndRefusesCalls) {
  CircuitBreaker breaker(store, "exchange", options());
  for (int i = 0; i < 4; ++i) breaker.record_failure();
  EXPECT_TRUE(breaker.can_retry().allowed);
  breaker.record_failure();
  const Permission refused = breaker.can_retry();
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.state, State::kOpen);
  EXPECT_EQ(refused.retry_after, 10s);
  EXPECT_NE(refused.reason.find("open"), std::string::npos);
  ASSERT_EQ(types(), std::vector<std::string>{"circuit_opened"});
  const alerts::AlertContext& context = fired[0].context;
  EXPECT_EQ(context.job_type, "exchange");
  EXPECT_EQ(context.state, "OPEN");
  EXPECT_EQ(context.previous_state, "CLOSED");
  EXPECT_EQ(context.failure_count, 5u);
  EXPECT_EQ(context.threshold, 5u);
  EXPECT_EQ(context.window, 60s);
  EXPECT_EQ(context.timestamp, clock.system_now());
  EXPECT_FALSE(context.instance.empty());
}

TEST_F(BreakerTest, OldFailuresLeaveTheWindow) {
  CircuitBreaker breaker(store, "exchange", options());
  for (int i = 0; i < 4; ++i) breaker.record_failure();
  clock.advance(61s);
  breaker.record_failure();
  EXPECT_TRUE(breaker.can_retry().allowed);
  EXPECT_EQ(breaker.state(), State::kClosed);
}

TEST_F(BreakerTest, RecoversThroughHalfOpenWithLimitedProbes) {
  CircuitBreaker breaker(store, "exchange", options());
  for (int i = 0; i < 5; ++i) breaker.record_failure();
  clock.advance(10s);
  const Permission probe = breaker.can_retry();
  EXPECT_TRUE(probe.allowed);
  EXPECT_EQ(probe.state, State::kHalfOpen);
  EXPECT_FALSE(breaker.can_retry().allowed) << "one probe at a time";
  breaker.record_success();
  EXPECT_TRUE(breaker.can_retry().allowed);
  EXPECT_EQ(breaker.state(), State::kClosed);
  EXPECT_EQ(types(),
            (std::vector<std::string>{"circuit_opened", "circuit_half_open", "circuit_closed"}));
}

TEST_F(BreakerTest, FailedProbeReopensWithALongerBreakUpToTheCap) {
  CircuitBreaker breaker(store, "exchange", options());
  for (int i = 0; i < 5; ++i) breaker.record_failure();
  std::vector<long long> breaks;
  for (int trip = 0; trip < 3; ++trip) {
    clock.advance(60s);
    ASSERT_TRUE(breaker.can_retry().allowed);
    breaker.record_failure();
    breaks.push_back(breaker.can_retry().retry_after.count());
  }
  EXPECT_EQ(breaks, (std::vector<long long>{20000, 30000, 30000}))
      << "10 s doubled, capped at 30 s";
}

TEST_F(BreakerTest, AProbeThatNeverReportsFreesItsPermit) {
  CircuitBreaker breaker(store, "exchange", options());
  for (int i = 0; i < 5; ++i) breaker.record_failure();
  clock.advance(10s);
  ASSERT_TRUE(breaker.can_retry().allowed);  // this probe is lost
  EXPECT_FALSE(breaker.can_retry().allowed);
  clock.advance(5s);
  EXPECT_TRUE(breaker.can_retry().allowed) << "freed after max_half_open_wait";
}

// A call that began before the trip ends, on another thread, while this
// thread's probe is out: it is counted, but only the probe decides.
TEST_F(BreakerTest, ASlowCallFromBeforeTheTripDecidesNothingInHalfOpen) {
  CircuitBreaker breaker(store, "exchange", options());
  for (int i = 0; i < 5; ++i) breaker.record_failure();
  clock.advance(10s);
  const Permission probe = breaker.can_retry();
  ASSERT_TRUE(probe.allowed);
  ASSERT_EQ(probe.state, State::kHalfOpen);
  EXPECT_NE(probe.permit, kNoPermit);
  std::thread([&] { breaker.record_failure(); }).join();
  EXPECT_EQ(breaker.state(), State::kHalfOpen) << "reopened by a call that held no permit";
  std::thread([&] { breaker.record_success(); }).join();
  EXPECT_EQ(breaker.state(), State::kHalfOpen) << "closed by a call that held no permit";
  breaker.record_success();  // the probe, on the thread it was granted to
  EXPECT_EQ(breaker.state(), State::kClosed);
  EXPECT_EQ(types(),
            (std::vector<std::string>{"circuit_opened", "circuit_half_open", "circuit_closed"}));
}

// Another process whose view is still CLOSED (it has not looked since the
// trip) reports a failure while the fleet's probe is out.
TEST_F(BreakerTest, AProcessWithAStaleViewDecidesNothingInHalfOpen) {
  CircuitBreaker fleet(store, "exchange", options());
  CircuitBreakerOptions unwatched = options();
  unwatched.subscribe = false;  // else the fleet's transitions reach it at once
  CircuitBreaker stale(store, "exchange", unwatched);
  ASSERT_TRUE(stale.can_retry().allowed);
  for (int i = 0; i < 5; ++i) fleet.record_failure();
  clock.advance(10s);
  ASSERT_EQ(fleet.can_retry().state, State::kHalfOpen);
  stale.record_failure();
  EXPECT_EQ(fleet.state(), State::kHalfOpen) << "the break would have doubled";
  fleet.record_success();
  EXPECT_EQ(fleet.state(), State::kClosed);
}

// A probe whose outcome is recorded on another thread than the one that asked
// (a callback, a coroutine) carries its permit in the Permission.
TEST_F(BreakerTest, AProbeReportedWithItsPermissionFromAnotherThreadDecides) {
  CircuitBreaker breaker(store, "exchange", options());
  for (int i = 0; i < 5; ++i) breaker.record_failure();
  clock.advance(10s);
  const Permission probe = breaker.can_retry();
  ASSERT_EQ(probe.state, State::kHalfOpen);
  std::thread([&] { breaker.record_failure(Permission{}); }).join();
  EXPECT_EQ(breaker.state(), State::kHalfOpen) << "a permission without a permit decides nothing";
  std::thread([&] { breaker.record_failure(probe); }).join();
  const Permission refused = breaker.can_retry();
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, 20s) << "reopened by the probe, with the second trip's break";
  clock.advance(20s);
  const Permission second = breaker.can_retry();
  ASSERT_EQ(second.state, State::kHalfOpen);
  std::thread([&] { breaker.record_success(second); }).join();
  EXPECT_EQ(breaker.state(), State::kClosed);
}

// Breakers sharing a store learn each other's transitions by watching it, not
// by asking it again.
TEST_F(BreakerTest, AnotherBreakersTripReachesThisOneByWatchingTheStore) {
  CircuitBreaker tripping(store, "exchange", options());
  CircuitBreaker watching(store, "exchange", options());
  ASSERT_TRUE(watching.can_retry().allowed);
  const auto operations = watching.store_operations();
  for (int i = 0; i < 5; ++i) tripping.record_failure();
  const Permission refused = watching.can_retry();
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.state, State::kOpen);
  EXPECT_EQ(refused.retry_after, 10s);
  EXPECT_EQ(watching.store_operations(), operations);
}

TEST_F(BreakerTest, RatioModeNeedsMinimumThroughput) {
  CircuitBreakerOptions ratio = options();
  ratio.failure_ratio = 0.5;
  ratio.minimum_throughput = 10;
  CircuitBreaker breaker(store, "exchange", ratio);
  for (int i = 0; i < 6; ++i) breaker.record_failure();  // 6 of 6, but under 10 calls
  EXPECT_TRUE(breaker.can_retry().allowed);
  for (int i = 0; i < 3; ++i) breaker.record_success();
  EXPECT_TRUE(breaker.can_retry().allowed) << "9 calls: still under the minimum";
  breaker.record_success();  // 6 failures of 10 calls = 60 %
  EXPECT_FALSE(breaker.can_retry().allowed);
  EXPECT_EQ(fired.size(), 1u);
}

TEST_F(BreakerTest, ClosedCanRetryMakesNoStoreOperationWithinStaleness) {
  CircuitBreaker breaker(store, "exchange", options());
  breaker.record_failure();
  const auto before = breaker.store_operations();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(breaker.can_retry().allowed);
  breaker.record_success();  // count mode, closed: nothing to tell the store
  EXPECT_EQ(breaker.store_operations(), before);
  clock.advance(2s);  // past the 1 s staleness
  EXPECT_TRUE(breaker.can_retry().allowed);
  EXPECT_EQ(breaker.store_operations(), before + 1);
}

TEST_F(BreakerTest, ManualControl) {
  CircuitBreaker breaker(store, "exchange", options());
  breaker.force_open();
  EXPECT_FALSE(breaker.can_retry().allowed);
  EXPECT_EQ(breaker.state(), State::kForcedOpen);
  clock.advance(1h);
  EXPECT_FALSE(breaker.can_retry().allowed) << "forced open does not recover by itself";
  breaker.force_close();
  EXPECT_TRUE(breaker.can_retry().allowed);
  breaker.disable();
  for (int i = 0; i < 50; ++i) breaker.record_failure();
  EXPECT_TRUE(breaker.can_retry().allowed);
  EXPECT_EQ(breaker.state(), State::kDisabled);
  breaker.reset();
  EXPECT_EQ(breaker.state(), State::kClosed);
  // Every transition is announced with one of alert_hooks.hpp's event types.
  EXPECT_EQ(types(),
            (std::vector<std::string>{
                std::string(alerts::kCircuitOpened), std::string(alerts::kCircuitClosed),
                std::string(alerts::kCircuitDisabled), std::string(alerts::kCircuitClosed)}));
  store->down = true;
  EXPECT_THROW(breaker.force_open(), StoreUnavailable) << "an operator must know it did not land";
  store->down = false;
}

TEST_F(BreakerTest, ManualControlNamesWhoForcedIt) {
  CircuitBreaker breaker(store, "exchange", options());
  breaker.force_open();
  EXPECT_EQ(store->read("exchange", {}).forced_by, alerts::this_instance())
      << "without an actor: this process";
  breaker.disable("deploy-bot");
  EXPECT_EQ(store->read("exchange", {}).forced_by, "deploy-bot");
  EXPECT_THROW(breaker.force_close(std::string(300, 'x')), InvalidArgument);
  EXPECT_EQ(breaker.state(), State::kDisabled) << "a refused command changes nothing";
  breaker.reset();
  EXPECT_EQ(store->read("exchange", {}).forced_by, "");
}

TEST_F(BreakerTest, StoreDownKeepsALocalViewAndAlertsOnce) {
  CircuitBreaker breaker(store, "exchange", options());
  store->down = true;
  EXPECT_TRUE(breaker.can_retry().allowed);
  for (int i = 0; i < 5; ++i) breaker.record_failure();
  EXPECT_TRUE(breaker.store_unavailable());
  EXPECT_FALSE(breaker.can_retry().allowed) << "the local view opened";
  EXPECT_EQ(types(), (std::vector<std::string>{"circuit_store_unavailable", "circuit_opened"}));
  EXPECT_EQ(fired[1].context.extra.at("decided_by"), "local view (store unreachable)");
  store->down = false;
  clock.advance(2s);
  (void)breaker.state();
  EXPECT_FALSE(breaker.store_unavailable());
}

// An operator's FORCED_OPEN must hold when the store goes away: the local
// view starts from the last state the fleet had, not from CLOSED.
TEST_F(BreakerTest, ForcedOpenHoldsThroughAStoreOutage) {
  CircuitBreaker breaker(store, "exchange", options());
  breaker.force_open();
  store->down = true;
  clock.advance(2s);  // past the 1 s staleness: the view asks the store, which is down
  const Permission refused = breaker.can_retry();
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.state, State::kForcedOpen);
  breaker.record_success();
  for (int i = 0; i < 10; ++i) breaker.record_failure();
  clock.advance(1h);
  EXPECT_FALSE(breaker.can_retry().allowed) << "forced open does not end with an outage";
  EXPECT_EQ(breaker.state(), State::kForcedOpen);
  EXPECT_TRUE(breaker.store_unavailable());
}

TEST_F(BreakerTest, DisabledHoldsThroughAStoreOutage) {
  CircuitBreaker breaker(store, "exchange", options());
  breaker.disable();
  store->down = true;
  for (int i = 0; i < 50; ++i) breaker.record_failure();
  clock.advance(2s);
  EXPECT_TRUE(breaker.can_retry().allowed);
  EXPECT_EQ(breaker.state(), State::kDisabled);
}

// A call that was in flight when the breaker opened fails during the outage:
// the local view still holds the fleet's break, then probes with its limit,
// and a failed probe reopens with the break of the fleet's next trip.
TEST_F(BreakerTest, OpenStaysOpenUntilItsBreakEndsThroughAStoreOutage) {
  CircuitBreaker breaker(store, "exchange", options());
  for (int i = 0; i < 5; ++i) breaker.record_failure();
  clock.advance(4s);
  store->down = true;
  breaker.record_failure();
  const Permission refused = breaker.can_retry();
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.state, State::kOpen);
  EXPECT_EQ(refused.retry_after, 6s);
  clock.advance(6s);
  const Permission probe = breaker.can_retry();
  EXPECT_TRUE(probe.allowed);
  EXPECT_EQ(probe.state, State::kHalfOpen);
  EXPECT_FALSE(breaker.can_retry().allowed) << "one probe at a time, locally too";
  breaker.record_failure();
  EXPECT_EQ(breaker.can_retry().retry_after, 20s) << "the second trip's break";
}

// The fleet is HALF_OPEN and this process holds one of its two probe permits
// when the store goes: the local view lets one more probe through, not every
// call, and the probe in flight still decides.
TEST_F(BreakerTest, HalfOpenKeepsItsProbeLimitThroughAStoreOutage) {
  CircuitBreakerOptions two_probes = options();
  two_probes.half_open_max_probes = 2;
  CircuitBreaker breaker(store, "exchange", two_probes);
  for (int i = 0; i < 5; ++i) breaker.record_failure();
  clock.advance(10s);
  const Permission probe = breaker.can_retry();
  ASSERT_EQ(probe.state, State::kHalfOpen);
  store->down = true;
  Permission second;
  Permission third;
  std::thread([&] { second = breaker.can_retry(); }).join();
  std::thread([&] { third = breaker.can_retry(); }).join();
  EXPECT_TRUE(second.allowed);
  EXPECT_EQ(second.state, State::kHalfOpen);
  EXPECT_FALSE(third.allowed) << "two probes at most: this process's and one more";
  breaker.record_success();  // the probe granted before the outage
  EXPECT_EQ(breaker.state(), State::kClosed);
  EXPECT_TRUE(breaker.can_retry().allowed);
}

// The probe's own outcome is the first call to meet the outage: its permit
// still counts in the local view, so the probe decides there.
TEST_F(BreakerTest, AProbeWhoseOutcomeMeetsTheOutageFirstStillDecides) {
  CircuitBreaker breaker(store, "exchange", options());
  for (int i = 0; i < 5; ++i) breaker.record_failure();
  clock.advance(10s);
  ASSERT_EQ(breaker.can_retry().state, State::kHalfOpen);
  store->down = true;
  breaker.record_failure();
  const Permission refused = breaker.can_retry();
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.state, State::kOpen) << "the probe failed: reopened";
  EXPECT_EQ(refused.retry_after, 20s);
}

// When the store answers again, the fleet's state applies and one event says
// that the alerts raised from the local view are over.
TEST_F(BreakerTest, TheStoreComingBackEndsTheLocalViewWithAnEvent) {
  CircuitBreaker breaker(store, "exchange", options());
  store->down = true;
  for (int i = 0; i < 5; ++i) breaker.record_failure();
  ASSERT_FALSE(breaker.can_retry().allowed);
  store->down = false;
  EXPECT_EQ(breaker.state(), State::kClosed) << "the fleet never opened";
  EXPECT_TRUE(breaker.can_retry().allowed);
  breaker.record_failure();
  ASSERT_EQ(types(), (std::vector<std::string>{"circuit_store_unavailable", "circuit_opened",
                                               "circuit_store_available"}));
  const alerts::AlertContext& context = fired[2].context;
  EXPECT_EQ(context.job_type, "exchange");
  EXPECT_EQ(context.state, "CLOSED");
  EXPECT_EQ(context.previous_state, "OPEN");
  EXPECT_NE(fired[2].message.find("reachable again"), std::string::npos) << fired[2].message;
}

// A second outage starts from what the fleet had then, not from what the
// first outage's local view had come to.
TEST_F(BreakerTest, ASecondOutageStartsFromTheFleetNotFromTheFirstOutage) {
  CircuitBreaker breaker(store, "exchange", options());
  store->down = true;
  for (int i = 0; i < 5; ++i) breaker.record_failure();
  ASSERT_FALSE(breaker.can_retry().allowed);
  store->down = false;
  ASSERT_EQ(breaker.state(), State::kClosed);
  store->down = true;
  clock.advance(2s);
  EXPECT_TRUE(breaker.can_retry().allowed) << "the first outage's local OPEN came back";
  for (int i = 0; i < 4; ++i) breaker.record_failure();
  EXPECT_TRUE(breaker.can_retry().allowed) << "its failures counted again";
  const std::vector<std::string> seen = types();
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "circuit_store_unavailable"), 2);
}

// Many threads meet the outage at once: none may see the local view before
// it has taken the fleet's state.
TEST_F(BreakerTest, ThreadsMeetingAnOutageTogetherAllSeeTheFleetsState) {
  CircuitBreaker breaker(store, "exchange", options());
  breaker.force_open();
  store->down = true;
  clock.advance(2s);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (breaker.can_retry().allowed) allowed.fetch_add(1);
        breaker.record_failure();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(allowed.load(), 0);
  EXPECT_EQ(breaker.state(), State::kForcedOpen);
}

TEST_F(BreakerTest, ThrowingHookIsContained) {
  hooks->add_log_hook([](std::string_view, std::string_view, const alerts::AlertContext&) {
    throw std::runtime_error("hook bug");
  });
  CircuitBreaker breaker(store, "exchange", options());
  for (int i = 0; i < 5; ++i) breaker.record_failure();
  EXPECT_FALSE(breaker.can_retry().allowed);
  EXPECT_EQ(hooks->hook_errors(), 1u);
}

TEST_F(BreakerTest, RetryExecutorStopsWhileTheBreakerIsOpen) {
  CircuitBreaker breaker(store, "exchange", options());
  retry::RetryPolicy policy{.max_attempts = 20, .jitter = Jitter::kNone, .clock = &clock};
  policy.allow_retry = breaker.gate();
  int calls = 0;
  EXPECT_THROW(retry::run(policy,
                          [&]() -> int {
                            ++calls;
                            breaker.record_failure();
                            throw StoreUnavailable("exchange down");
                          }),
               StoreUnavailable);
  EXPECT_EQ(calls, 5) << "the fifth failure opened the breaker; no sixth attempt";
}

TEST_F(BreakerTest, InvalidArgumentsAreRefused) {
  EXPECT_THROW(CircuitBreaker(nullptr, "x"), InvalidArgument);
  EXPECT_THROW(CircuitBreaker(store, ""), InvalidArgument);
  EXPECT_THROW(CircuitBreaker(store, "a:b"), InvalidArgument);
  EXPECT_THROW(CircuitBreaker(store, "x", {.failure_threshold = 0}), InvalidArgument);
  EXPECT_THROW(CircuitBreaker(store, "x", {.failure_ratio = 2}), InvalidArgument);
}

// NaN passes every `< x` check; a huge duration overflows the break arithmetic.
// Each refusal names the field, so a typo is found at start-up.
TEST_F(BreakerTest, NonFiniteAndOverlongOptionsAreRefusedNamingTheField) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  auto refused = [&](const CircuitBreakerOptions& options, const std::string& field) {
    try {
      CircuitBreaker breaker(store, "x", options);
    } catch (const InvalidArgument& error) {
      EXPECT_NE(std::string(error.what()).find(field), std::string::npos) << error.what();
      return;
    }
    ADD_FAILURE() << field << " was accepted";
  };
  refused({.failure_ratio = nan}, "failure_ratio");
  refused({.break_multiplier = nan}, "break_multiplier");
  refused({.break_multiplier = inf}, "break_multiplier");
  refused({.time_window = std::chrono::milliseconds::max()}, "time_window");
  refused({.max_break_duration = std::chrono::milliseconds::max()}, "max_break_duration");
  refused({.max_half_open_wait = std::chrono::hours(25)}, "max_half_open_wait");
  refused({.staleness = -std::chrono::seconds(1)}, "staleness");
  refused({.half_open_max_probes = 101}, "half_open_max_probes");
  refused({.window_buckets = 0}, "window_buckets");
  EXPECT_NO_THROW(CircuitBreaker(
      store, "ok",
      {.time_window = std::chrono::hours(24), .max_break_duration = std::chrono::hours(24)}));
}

}  // namespace
}  // namespace prodsafe::breaker
