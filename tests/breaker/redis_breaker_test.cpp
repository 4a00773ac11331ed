// The breaker shared through a real Redis: processes, alerts, memory, crashes.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "print_state.hpp"
#include "prodsafe/breaker/circuit_breaker.hpp"
#include "prodsafe/breaker/redis_breaker_store.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/redis/connection.hpp"

namespace prodsafe::breaker {
namespace {

using namespace std::chrono_literals;
using std::chrono::steady_clock;

std::shared_ptr<RedisBreakerStore> store_for(const embedded::RedisServer& server) {
  return std::make_shared<RedisBreakerStore>(std::make_shared<redis::Client>(
      server.url(), redis::Options{.connect_timeout = 300ms,
                                   .command_timeout = 300ms,
                                   .reconnect_backoff_initial = 10ms,
                                   .reconnect_backoff_max = 50ms}));
}

CircuitBreakerOptions options(std::shared_ptr<alerts::AlertHooks> hooks = nullptr) {
  return {.failure_threshold = 10, .break_duration = 30s, .staleness = 500ms, .alert_hooks = hooks};
}

bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto deadline = steady_clock::now() + limit;
  while (steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

// How many connections listen on `channel`.
long long subscribers(redis::Client& client, const std::string& channel) {
  const redis::Reply reply = client.command({"PUBSUB", "NUMSUB", channel});
  return reply.array().size() == 2 ? reply.array()[1].integer() : -1;
}

// Runs `body` in a child process once the parent writes to the pipe; returns
// the child's pid and the pipe's write end.
std::pair<pid_t, int> fork_waiting(const std::function<int()>& body) {
  int go[2];
  if (::pipe(go) != 0) return {-1, -1};
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(go[1]);
    char byte = 0;
    if (::read(go[0], &byte, 1) != 1) ::_exit(3);
    ::_exit(body());
  }
  ::close(go[0]);
  return {child, go[1]};
}

int exit_code(pid_t child) {
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(RedisBreakerTest, FailuresInOneProcessOpenTheBreakerForAnother) {
  embedded::RedisServer server;
  auto [child, go] = fork_waiting([&] {
    CircuitBreaker breaker(store_for(server), "exchange", options());
    for (int i = 0; i < 10; ++i) breaker.record_failure();
    return breaker.can_retry().allowed ? 1 : 0;
  });
  ASSERT_GT(child, 0);
  CircuitBreaker breaker(store_for(server), "exchange", options());
  ASSERT_TRUE(breaker.can_retry().allowed);
  std::this_thread::sleep_for(100ms);  // the subscriber is listening
  const char byte = 1;
  ASSERT_EQ(::write(go, &byte, 1), 1);
  ::close(go);
  EXPECT_EQ(exit_code(child), 0);
  const auto tripped = steady_clock::now();
  EXPECT_TRUE(wait_for([&] { return !breaker.can_retry().allowed; }, 500ms + 200ms))
      << "the other process must see OPEN within the staleness bound";
  EXPECT_LT(steady_clock::now() - tripped, 700ms);
  EXPECT_EQ(breaker.can_retry().state, State::kOpen);
}

TEST(RedisBreakerTest, ExactlyOneAlertPerTransitionAcrossEightProcesses) {
  embedded::RedisServer server;
  int results[2];
  ASSERT_EQ(::pipe(results), 0);
  std::vector<std::pair<pid_t, int>> children;
  for (int p = 0; p < 8; ++p) {
    children.push_back(fork_waiting([&] {
      auto hooks = std::make_shared<alerts::AlertHooks>();
      std::atomic<int> opened{0};
      hooks->add_event_hook(
          [&](std::string_view type, std::string_view, const alerts::AlertContext&) {
            if (type == alerts::kCircuitOpened) opened.fetch_add(1);
          });
      CircuitBreaker breaker(store_for(server), "payments", options(hooks));
      for (int i = 0; i < 5; ++i) breaker.record_failure();  // 40 failures, threshold 10
      const char count = static_cast<char>(opened.load());
      return ::write(results[1], &count, 1) == 1 ? 0 : 2;
    }));
  }
  for (auto& [child, go] : children) {
    const char byte = 1;
    ASSERT_EQ(::write(go, &byte, 1), 1);
  }
  for (auto& [child, go] : children) ::close(go);
  int alerts_seen = 0;
  for (auto& [child, go] : children) {
    EXPECT_EQ(exit_code(child), 0);
    char count = 0;
    ASSERT_EQ(::read(results[0], &count, 1), 1);
    alerts_seen += count;
  }
  EXPECT_EQ(alerts_seen, 1) << "one fleet-wide transition, one alert";
}

TEST(RedisBreakerTest, MemoryIsBoundedWhateverTheFailureRate) {
  embedded::RedisServer server;
  auto store = store_for(server);
  BreakerRules rules;
  rules.failure_threshold = 1'000'000'000;  // never trips: every failure is counted
  rules.time_window = 1000ms;               // buckets of 100 ms come and go during the run
  auto usage = [&] {
    return store->client().command({"MEMORY", "USAGE", store->key("flood")}).integer();
  };
  for (int i = 0; i < 1000; ++i) store->record("flood", Outcome::kFailure, rules);
  const long long after_thousand = usage();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 24'750; ++i) store->record("flood", Outcome::kFailure, rules);
    });
  }
  for (auto& thread : threads) thread.join();
  const long long fields = store->client().command({"HLEN", store->key("flood")}).integer();
  // state, trips, open_until, last, fc, sc, the ring, the probe permits (p<i>, t<i>).
  EXPECT_LE(fields, 6 + 3 * rules.window_buckets + 2 * rules.half_open_max_probes);
  // A full ring of 10 buckets takes about 450 bytes; 100,000 failures must
  // leave the key under a fixed size, not one that grows with them.
  EXPECT_LT(usage(), 1024) << "after 1,000 failures it took " << after_thousand;
}

TEST(RedisBreakerTest, FailuresLeaveTheWindowAsItsBucketsRotate) {
  embedded::RedisServer server;
  auto store = store_for(server);
  BreakerRules rules;
  rules.failure_threshold = 5;
  rules.time_window = 400ms;
  rules.window_buckets = 4;
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(store->record("rot", Outcome::kFailure, rules).failures, i + 1u);
  std::this_thread::sleep_for(450ms);  // every bucket rotates out
  const Snapshot after = store->record("rot", Outcome::kFailure, rules);
  EXPECT_EQ(after.state, State::kClosed);
  EXPECT_EQ(after.failures, 1u);
  // Two failures, half a window apart: the first leaves while the second stays.
  store->control("rot", Command::kReset, rules);
  store->record("rot", Outcome::kFailure, rules);
  std::this_thread::sleep_for(250ms);
  store->record("rot", Outcome::kFailure, rules);
  EXPECT_EQ(store->read("rot", rules).failures, 2u);
  std::this_thread::sleep_for(250ms);
  EXPECT_EQ(store->read("rot", rules).failures, 1u) << "the first has left the window";
  const Snapshot recorded = store->record("rot", Outcome::kFailure, rules);
  EXPECT_EQ(recorded.failures, 2u);
  for (int i = 0; i < 3; ++i) store->record("rot", Outcome::kFailure, rules);
  EXPECT_EQ(store->read("rot", rules).state, State::kOpen);
}

TEST(RedisBreakerTest, RedisKilledMidRunKeepsALocalViewAndRecovers) {
  embedded::RedisServer server;
  auto hooks = std::make_shared<alerts::AlertHooks>();
  std::vector<std::string> events;
  std::mutex mutex;
  hooks->add_event_hook([&](std::string_view type, std::string_view, const alerts::AlertContext&) {
    std::lock_guard lock(mutex);
    events.emplace_back(type);
  });
  CircuitBreaker breaker(store_for(server), "ledger", options(hooks));
  for (int i = 0; i < 3; ++i) breaker.record_failure();
  server.kill();
  EXPECT_TRUE(breaker.can_retry().allowed);
  for (int i = 0; i < 10; ++i) breaker.record_failure();  // counted locally, never throws
  EXPECT_TRUE(breaker.store_unavailable());
  EXPECT_FALSE(breaker.can_retry().allowed) << "the local view opened";
  server.restart();  // no persistence: the fleet's breaker starts closed
  breaker.reset();
  EXPECT_FALSE(breaker.store_unavailable());
  EXPECT_TRUE(breaker.can_retry().allowed);
  std::lock_guard lock(mutex);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0], "circuit_store_unavailable");
  EXPECT_EQ(events[1], "circuit_opened");
  EXPECT_EQ(std::count(events.begin(), events.end(), "circuit_store_unavailable"), 1);
}

// An operator forced the breaker open; then Redis dies. The breaker's clock
// is a ManualClock, so the view goes stale when the test says, not by sleeping.
TEST(RedisBreakerTest, ForcedOpenHoldsWhileRedisIsDown) {
  embedded::RedisServer server;
  auto hooks = std::make_shared<alerts::AlertHooks>();
  std::vector<std::string> events;
  std::mutex mutex;
  hooks->add_event_hook([&](std::string_view type, std::string_view, const alerts::AlertContext&) {
    std::lock_guard lock(mutex);
    events.emplace_back(type);
  });
  ManualClock clock;
  CircuitBreakerOptions manual = options(hooks);
  manual.clock = &clock;
  CircuitBreaker breaker(store_for(server), "ledger", manual);
  breaker.force_open();
  server.kill();
  for (int second = 0; second < 5; ++second) {
    clock.advance(1s);
    const Permission refused = breaker.can_retry();
    EXPECT_FALSE(refused.allowed) << "after " << second + 1 << " s of outage";
    EXPECT_EQ(refused.state, State::kForcedOpen);
    breaker.record_failure();
    breaker.record_success();
  }
  EXPECT_TRUE(breaker.store_unavailable());
  server.restart();  // no persistence: the fleet's breaker starts closed
  EXPECT_EQ(breaker.state(), State::kClosed);
  EXPECT_FALSE(breaker.store_unavailable());
  std::lock_guard lock(mutex);
  EXPECT_EQ(events, (std::vector<std::string>{"circuit_opened", "circuit_store_unavailable",
                                              "circuit_store_available"}));
}

// Another process trips the breaker; this one learns it from pub/sub alone,
// then Redis dies: its local view starts OPEN, with the fleet's trip count.
TEST(RedisBreakerTest, AnOpeningSeenOnlyOnPubSubHoldsWhileRedisIsDown) {
  embedded::RedisServer server;
  CircuitBreaker tripping(store_for(server), "ledger", options());
  ManualClock clock;
  CircuitBreakerOptions manual = options();
  manual.clock = &clock;
  CircuitBreaker watching(store_for(server), "ledger", manual);
  ASSERT_TRUE(watching.can_retry().allowed);  // reads the store once; then never stale
  auto store = store_for(server);
  ASSERT_TRUE(wait_for([&] { return subscribers(store->client(), store->channel("ledger")) == 2; },
                       2000ms));
  const auto operations = watching.store_operations();
  for (int i = 0; i < 10; ++i) tripping.record_failure();
  ASSERT_TRUE(wait_for([&] { return watching.can_retry().state == State::kOpen; }, 2000ms));
  ASSERT_EQ(watching.store_operations(), operations) << "learned from pub/sub, not the store";
  server.kill();
  watching.record_failure();  // meets the outage
  const Permission refused = watching.can_retry();
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.state, State::kOpen);
  clock.advance(30s);
  ASSERT_TRUE(watching.can_retry().allowed);  // the local probe
  watching.record_failure();
  EXPECT_EQ(watching.can_retry().retry_after, 60s) << "the fleet's second trip: 30 s doubled";
}

TEST(RedisBreakerTest, GarbageUnderTheKeyNeverBreaksCanRetry) {
  embedded::RedisServer server;
  auto store = store_for(server);
  store->client().set(store->key("broken"), "not a hash");
  BreakerRules rules;
  EXPECT_THROW(store->read("broken", rules), DecodeError);
  CircuitBreaker breaker(store, "broken", options());
  EXPECT_TRUE(breaker.can_retry().allowed);
  breaker.record_failure();
  EXPECT_EQ(store->client().get(store->key("broken")), "not a hash") << "left alone";
}

// Publishes `first` then `second` on `channel` from one script, as the breaker's
// script publishes transitions: Redis writes both to a subscriber at once.
void publish_together(redis::Client& client, const std::string& channel, std::string_view first,
                      std::string_view second) {
  client
      .command({"EVAL",
                "redis.call('PUBLISH', KEYS[1], ARGV[1]) redis.call('PUBLISH', KEYS[1], ARGV[2])",
                "1", channel, first, second})
      .check("EVAL");
}

// Two messages that arrive in one read: hiredis buffers the second while
// returning the first, and a poll() on the socket would not see it.
TEST(RedisBreakerTest, TwoMessagesReadTogetherAreBothDelivered) {
  embedded::RedisServer server;
  auto store = store_for(server);
  const std::string channel = store->channel("exchange");
  redis::Connection subscriber(store->client().endpoint(), store->client().options());
  const std::string_view channels[] = {channel};
  subscriber.subscribe(channels);
  publish_together(store->client(), channel, "HALF_OPEN:0", "OPEN:20000");
  // Both messages reach the subscriber's socket, so its first read takes both.
  std::this_thread::sleep_for(50ms);
  const auto first = subscriber.next_message(1000ms);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->array().at(2).str(), "HALF_OPEN:0");
  const auto second = subscriber.next_message(200ms);
  ASSERT_TRUE(second.has_value())
      << "the second message was buffered; it must not wait for a third";
  EXPECT_EQ(second->array().at(2).str(), "OPEN:20000");
}

// The breaker's own subscriber: with a clock that never moves, the view is
// never stale, so only pub/sub can change it.
TEST(RedisBreakerTest, TheSubscriberAdoptsTransitionsThatArriveTogether) {
  embedded::RedisServer server;
  auto store = store_for(server);
  ManualClock clock;
  CircuitBreakerOptions frozen = options();
  frozen.clock = &clock;
  CircuitBreaker breaker(store, "exchange", frozen);
  const std::string channel = store->channel("exchange");
  ASSERT_TRUE(wait_for([&] { return subscribers(store->client(), channel) == 1; }, 2000ms));
  ASSERT_TRUE(breaker.can_retry().allowed);  // the first look reads the store; then fresh
  const auto operations = breaker.store_operations();
  publish_together(store->client(), channel, "OPEN:30000", "FORCED_OPEN:0");
  EXPECT_TRUE(wait_for([&] { return breaker.can_retry().state == State::kForcedOpen; }, 2000ms))
      << "stuck at " << to_string(breaker.can_retry().state);
  EXPECT_EQ(breaker.store_operations(), operations) << "the view came from pub/sub alone";
}

// The watch outlives an outage: it stops listening while Redis is away (what
// is published then is lost), subscribes again when it is back, and delivers
// from then on.
TEST(RedisBreakerTest, AWatchResubscribesWhenRedisComesBack) {
  embedded::RedisServer server;
  auto store = store_for(server);
  std::mutex mutex;
  std::vector<State> seen;
  const Subscription subscription = store->watch("ledger", [&](const Transition& transition) {
    std::lock_guard lock(mutex);
    seen.push_back(transition.state);
  });
  ASSERT_TRUE(wait_for([&] { return subscription.listening(); }, 2000ms));
  server.kill();
  EXPECT_TRUE(wait_for([&] { return !subscription.listening(); }, 3000ms));
  server.restart();
  ASSERT_TRUE(wait_for([&] { return subscription.listening(); }, 3000ms));
  store->control("ledger", Command::kForceOpen, BreakerRules{});
  EXPECT_TRUE(wait_for(
      [&] {
        std::lock_guard lock(mutex);
        return seen == std::vector<State>{State::kForcedOpen};
      },
      2000ms));
}

}  // namespace
}  // namespace prodsafe::breaker
