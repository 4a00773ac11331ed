// RedisAlertStream against a real redis-server: what an entry holds, the
// cap, the key prefix, and every way an alert can fail to be written (Redis
// paused or down, a full queue, a key of the wrong type, shutdown, fork),
// each counted and never blocking the caller of AlertHooks::fire().
#include "prodsafe/alerts/redis_alert_stream.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "alert_stream_test_support.hpp"
#include "prodsafe/alerts/alert_hooks.hpp"
#include "prodsafe/core/clock.hpp"
#include "prodsafe/core/error.hpp"
#include "support/log_capture.hpp"

namespace prodsafe::alerts {
namespace {

using namespace std::chrono_literals;
using testing::AlertStreamTest;
using testing::eventually;
using Fields = std::map<std::string, std::string>;
using Clock = std::chrono::steady_clock;

// The stream's entries as stored, oldest first: each one's fields.
std::vector<Fields> entries(redis::Client& client, const std::string& key) {
  std::vector<Fields> out;
  const redis::Reply reply = client.command({"XRANGE", key, "-", "+"});
  for (const redis::Reply& entry : reply.array()) {
    Fields fields;
    const auto& pairs = entry.array()[1].array();
    for (std::size_t i = 0; i < pairs.size(); i += 2) {
      EXPECT_TRUE(fields.emplace(pairs[i].str(), pairs[i + 1].str()).second)
          << "field given twice: " << pairs[i].str();
    }
    out.push_back(std::move(fields));
  }
  return out;
}

long long stream_length(redis::Client& client, const std::string& key) {
  return client.command({"XLEN", key}).integer();
}

std::size_t lines_with(const prodsafe::testing::LogCapture& log, const std::string& text) {
  const auto lines = log.lines();
  return static_cast<std::size_t>(std::count_if(lines.begin(), lines.end(), [&](const auto& line) {
    return line.find(text) != std::string::npos;
  }));
}

class RedisAlertStreamTest : public AlertStreamTest {
 protected:
  std::shared_ptr<RedisAlertStream> make_stream(RedisAlertStreamOptions options = {}) {
    options.metrics = &registry;
    return make_stream(client, std::move(options));
  }
  std::shared_ptr<RedisAlertStream> make_stream(std::shared_ptr<redis::Client> with,
                                                RedisAlertStreamOptions options) {
    options.metrics = &registry;
    return std::make_shared<RedisAlertStream>(std::move(with), std::move(options));
  }
};

TEST_F(RedisAlertStreamTest, AFiredAlertArrivesWithEveryFieldItsContextSets) {
  ManualClock clock;
  auto stream = make_stream({.clock = &clock});
  AlertHooks hooks;
  hooks.add_event_hook(stream->hook());

  const auto opened_at = std::chrono::system_clock::time_point(1767225600123ms);
  const std::string binary_message("opened\0\xff\n\"after\" 5", 20);
  hooks.fire(kCircuitOpened, binary_message,
             AlertContext{.job_type = "orders",
                          .state = "OPEN",
                          .previous_state = "CLOSED",
                          .failure_count = 5,
                          .threshold = 3,
                          .window = 60000ms,
                          .timestamp = opened_at,
                          .instance = "worker-3:4121",
                          .extra = {{"trips", "2"}, {"decided_by", "this process"}}});
  // No timestamp, no instance, zeros: the clock's time, this process, and
  // only the fields that are set.
  hooks.fire("retry_spike", "spike", AlertContext{});
  ASSERT_TRUE(stream->flush(5s));

  const auto stored = entries(*client, "alerts:recent");
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0], (Fields{{"type", "circuit_opened"},
                               {"message", binary_message},
                               {"at_ms", "1767225600123"},
                               {"instance", "worker-3:4121"},
                               {"job_type", "orders"},
                               {"state", "OPEN"},
                               {"previous_state", "CLOSED"},
                               {"failure_count", "5"},
                               {"threshold", "3"},
                               {"window_ms", "60000"},
                               {"extra.trips", "2"},
                               {"extra.decided_by", "this process"}}));
  const auto clock_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock.system_now().time_since_epoch())
          .count();
  EXPECT_EQ(stored[1], (Fields{{"type", "retry_spike"},
                               {"message", "spike"},
                               {"at_ms", std::to_string(clock_ms)},
                               {"instance", this_instance()}}));
  EXPECT_EQ(stream->stats().written, 2u);
  EXPECT_EQ(stream->stats().dropped(), 0u);
  EXPECT_EQ(metric("prodsafe_alert_stream_written_total"), 2);
  EXPECT_EQ(dropped_metric("queue_full"), 0) << "the series exist from the start";
  EXPECT_EQ(hooks.hook_errors(), 0u);
}

TEST_F(RedisAlertStreamTest, ExactTrimKeepsTheNewestMaxEntriesInOrder) {
  auto stream = make_stream({.max_entries = 5, .exact_trim = true, .max_batch = 3});
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(stream->append("a", "alert " + std::to_string(i), {}));
  }
  ASSERT_TRUE(stream->flush(5s));
  const auto stored = entries(*client, "alerts:recent");
  ASSERT_EQ(stored.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(stored[i].at("message"), "alert " + std::to_string(15 + i));
  EXPECT_EQ(stream->stats().written, 20u);
}

TEST_F(RedisAlertStreamTest, ApproximateTrimCapsTheStreamWithinOneNode) {
  // MAXLEN ~ trims whole nodes of stream-node-max-entries (100) entries.
  auto stream = make_stream({.max_entries = 10});
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(stream->append("a", std::to_string(i), {}));
  ASSERT_TRUE(stream->flush(10s));
  const long long length = stream_length(*client, "alerts:recent");
  EXPECT_GE(length, 10);
  EXPECT_LE(length, 10 + 100);
  EXPECT_EQ(stream->stats().written, 500u);
}

TEST_F(RedisAlertStreamTest, TheKeyPrefixAndTheNameAreHonoured) {
  redis::Options prefixed = short_timeouts();
  prefixed.key_prefix = "tenant-a:";
  auto stream = make_stream(shared_client(prefixed), {});
  auto named = make_stream(shared_client(prefixed), {.name = "ops:alerts"});
  EXPECT_EQ(stream->key(), "tenant-a:alerts:recent");
  EXPECT_EQ(named->key(), "tenant-a:ops:alerts");
  ASSERT_TRUE(stream->append("a", "one", {}));
  ASSERT_TRUE(named->append("b", "two", {}));
  ASSERT_TRUE(stream->flush(5s));
  ASSERT_TRUE(named->flush(5s));
  EXPECT_EQ(stream_length(*client, "tenant-a:alerts:recent"), 1);
  EXPECT_EQ(stream_length(*client, "tenant-a:ops:alerts"), 1);
  EXPECT_EQ(client->command({"EXISTS", "alerts:recent"}).integer(), 0);
}

TEST_F(RedisAlertStreamTest, FireReturnsAtOnceWhileRedisIsPausedAndTheAlertsAreCounted) {
  // A client that waits a second for each reply: fire() must not.
  auto stream = make_stream(shared_client(timeouts(1s)), {});
  AlertHooks hooks;
  hooks.add_event_hook(stream->hook());
  server().pause();

  const auto start = Clock::now();
  for (int i = 0; i < 20; ++i) hooks.fire(kCircuitOpened, "opened", AlertContext{});
  const auto took = Clock::now() - start;
  EXPECT_LT(took, 50ms) << "20 fire() calls took "
                        << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                        << " ms";
  EXPECT_EQ(hooks.hook_errors(), 0u);

  ASSERT_TRUE(eventually([&] { return stream->stats().dropped_redis_error == 20; }, 15s))
      << "dropped: " << stream->stats().dropped_redis_error;
  EXPECT_EQ(dropped_metric("redis_error"), 20);
  EXPECT_EQ(stream->stats().written, 0u);
}

TEST_F(RedisAlertStreamTest, RedisDownIsCountedAndLoggedOncePerOutageAndWritingResumes) {
  prodsafe::testing::LogCapture log;
  auto stream = make_stream(shared_client(timeouts(500ms)), {});
  server().kill();
  for (int i = 0; i < 3; ++i) {  // three failed writes, one after the other
    ASSERT_TRUE(stream->append("a", "lost " + std::to_string(i), {}));
    ASSERT_TRUE(stream->flush(5s));
  }
  EXPECT_EQ(stream->stats().dropped_redis_error, 3u);
  EXPECT_EQ(dropped_metric("redis_error"), 3);
  EXPECT_EQ(lines_with(log, "cannot write to Redis"), 1u) << log.text();

  server().restart();
  ASSERT_TRUE(stream->append("a", "kept", {}));
  ASSERT_TRUE(stream->flush(5s));
  EXPECT_EQ(stream->stats().written, 1u);
  EXPECT_EQ(lines_with(log, "writing to Redis again; 3 alert(s) were dropped"), 1u) << log.text();
  const auto stored = entries(*client, "alerts:recent");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].at("message"), "kept");

  server().kill();  // a second outage is logged again
  ASSERT_TRUE(stream->append("a", "lost again", {}));
  ASSERT_TRUE(stream->flush(5s));
  EXPECT_EQ(lines_with(log, "cannot write to Redis"), 2u) << log.text();
}

TEST_F(RedisAlertStreamTest, AFullQueueDropsTheNewestAlertsAndCountsThem) {
  prodsafe::testing::LogCapture log;
  auto stream = make_stream(shared_client(timeouts(5s)), {.queue_capacity = 3});
  server().pause();
  ASSERT_TRUE(stream->append("a", "0", {}));
  // The writer has taken it and waits on the paused server.
  ASSERT_TRUE(eventually([&] { return stream->queued() == 0 && stream->pending() == 1; }));
  for (int i = 1; i <= 3; ++i) EXPECT_TRUE(stream->append("a", std::to_string(i), {}));
  EXPECT_FALSE(stream->append("a", "4", {}));
  EXPECT_FALSE(stream->append("a", "5", {}));
  EXPECT_EQ(stream->stats().dropped_queue_full, 2u);
  EXPECT_EQ(dropped_metric("queue_full"), 2);
  EXPECT_EQ(stream->pending(), 4u);
  EXPECT_EQ(lines_with(log, "queue full"), 2u) << "the 1st and 2nd drops: " << log.text();

  server().resume();
  ASSERT_TRUE(stream->flush(10s));
  std::vector<std::string> messages;
  for (const auto& entry : entries(*client, "alerts:recent"))
    messages.push_back(entry.at("message"));
  EXPECT_EQ(messages, (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(stream->stats().written, 4u);
}

TEST_F(RedisAlertStreamTest, AKeyOfTheWrongTypeIsCountedAndLoggedAndLeftAlone) {
  prodsafe::testing::LogCapture log;
  client->set("alerts:recent", "not a stream");
  auto stream = make_stream({.max_batch = 1});
  AlertHooks hooks;
  hooks.add_event_hook(stream->hook());
  hooks.fire(kCircuitOpened, "one", AlertContext{});
  hooks.fire(kCircuitOpened, "two", AlertContext{});
  ASSERT_TRUE(stream->flush(5s));
  EXPECT_EQ(stream->stats().dropped_redis_error, 2u);
  EXPECT_EQ(dropped_metric("redis_error"), 2);
  EXPECT_EQ(hooks.hook_errors(), 0u);
  EXPECT_EQ(lines_with(log, "WRONGTYPE"), 1u) << log.text();
  EXPECT_EQ(lines_with(log, "give the stream another name"), 1u) << log.text();
  EXPECT_EQ(client->get("alerts:recent"), "not a stream");
}

TEST_F(RedisAlertStreamTest, TheDestructorReturnsPromptlyWhileRedisIsPausedAndCountsEveryAlert) {
  constexpr auto kTimeout = 300ms;  // each of the client's three
  constexpr auto kDrain = 200ms;
  {
    auto stream =
        make_stream(shared_client(timeouts(kTimeout)), {.max_batch = 2, .drain_timeout = kDrain});
    server().pause();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(stream->append("a", std::to_string(i), {}));
    const auto start = Clock::now();
    stream.reset();
    const auto took = Clock::now() - start;
    // The drain, then at most one write: checkout + connect + command.
    EXPECT_LT(took, kDrain + 3 * kTimeout + 500ms)
        << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  }
  const double written = metric("prodsafe_alert_stream_written_total");
  const double redis_error = dropped_metric("redis_error");
  const double shutdown = dropped_metric("shutdown");
  EXPECT_EQ(written, 0);
  EXPECT_GE(redis_error, 1) << "the write in flight timed out";
  EXPECT_GE(shutdown, 1) << "the queue could not drain";
  EXPECT_EQ(written + redis_error + shutdown, 10) << "every alert is accounted for";
}

TEST_F(RedisAlertStreamTest, TheDestructorWritesWhatIsQueuedWhenRedisAnswers) {
  auto stream = make_stream({.max_batch = 7, .drain_timeout = 10s});
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(stream->append("a", std::to_string(i), {}));
  stream.reset();
  EXPECT_EQ(stream_length(*client, "alerts:recent"), 50);
  EXPECT_EQ(metric("prodsafe_alert_stream_written_total"), 50);
  EXPECT_EQ(dropped_metric("shutdown"), 0);
}

TEST_F(RedisAlertStreamTest, AForkedChildDropsAndCountsItsAlertsAndLeavesTheParentsThreadAlone) {
  auto stream = make_stream({});
  ASSERT_TRUE(stream->append("a", "before fork", {}));
  ASSERT_TRUE(stream->flush(5s));

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Only async-signal-tolerant work and no gtest here: report by exit code.
    int code = 0;
    if (stream->append("a", "from the child", {})) code |= 1;
    if (stream->stats().dropped_forked_child != 1) code |= 2;
    stream.reset();  // must neither hang nor touch the parent's thread
    ::_exit(code);
  }
  int status = 0;
  ASSERT_TRUE(eventually([&] { return ::waitpid(child, &status, WNOHANG) == child; }))
      << "the child hung";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the child queued; 2: its drop was not counted";

  ASSERT_TRUE(stream->append("a", "after fork", {}));
  ASSERT_TRUE(stream->flush(5s));
  const auto stored = entries(*client, "alerts:recent");
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[1].at("message"), "after fork");
  EXPECT_EQ(stream->stats().dropped_forked_child, 0u) << "the child's count stays in the child";
}

TEST_F(RedisAlertStreamTest, OptionsAndClientsThatCouldHangAreRefused) {
  EXPECT_THROW(RedisAlertStream(nullptr), InvalidArgument);
  EXPECT_THROW(RedisAlertStream(client, {.name = ""}), InvalidArgument);
  EXPECT_THROW(RedisAlertStream(client, {.max_entries = 0}), InvalidArgument);
  EXPECT_THROW(RedisAlertStream(client, {.queue_capacity = 0}), InvalidArgument);
  EXPECT_THROW(RedisAlertStream(client, {.max_batch = 0}), InvalidArgument);
  EXPECT_THROW(RedisAlertStream(client, {.drain_timeout = -1ms}), InvalidArgument);
  for (auto field : {&redis::Options::pool_checkout_timeout, &redis::Options::connect_timeout,
                     &redis::Options::command_timeout}) {
    redis::Options forever = short_timeouts();
    forever.*field = 0ms;
    try {
      RedisAlertStream stream(shared_client(forever));
      ADD_FAILURE() << "a client that may wait forever was accepted";
    } catch (const InvalidArgument& error) {
      EXPECT_NE(std::string(error.what()).find("wait forever"), std::string::npos) << error.what();
    }
  }
}

TEST_F(RedisAlertStreamTest, HookNeedsAStreamOwnedByASharedPtr) {
  RedisAlertStream stream(client);
  EXPECT_THROW((void)stream.hook(), InvalidArgument);
  EXPECT_TRUE(stream.append("a", "direct", {}));
  EXPECT_TRUE(stream.flush(5s));
  EXPECT_EQ(stream_length(*client, "alerts:recent"), 1);
}

}  // namespace
}  // namespace prodsafe::alerts
