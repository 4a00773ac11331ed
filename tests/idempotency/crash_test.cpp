// Real failures: a worker killed or paused mid-effect, Redis killed between
// the effect and its commit.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "store_harness.hpp"
#include "support/failing_effect_store.hpp"

namespace prodsafe::idempotency {
namespace {

using namespace std::chrono_literals;
using prodsafe::testing::TempDir;

constexpr auto kLease = 400ms;

std::shared_ptr<redis::Client> client_for(const embedded::RedisServer& server) {
  return std::make_shared<redis::Client>(server.url(),
                                         redis::Options{.connect_timeout = 300ms,
                                                        .command_timeout = 300ms,
                                                        .reconnect_backoff_initial = 10ms,
                                                        .reconnect_backoff_max = 50ms});
}

// Forks a worker that claims `entity` and signals through a pipe once its
// effect is running; the effect then runs for `duration` and returns "child".
// The child exits 0 after a commit, 10 on LeaseLost, 1 otherwise.
pid_t start_worker(const embedded::RedisServer& server, const TempDir& journal,
                   const std::string& entity, std::chrono::milliseconds duration, int& ready_fd) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  const pid_t child = ::fork();
  if (child != 0) {
    ::close(fds[1]);
    ready_fd = fds[0];
    return child;
  }
  ::close(fds[0]);
  int status = 1;
  try {
    SideEffectWrapper wrapper(std::make_shared<RedisEffectStore>(client_for(server)),
                              {.lease = kLease, .journal_directory = journal.path().string()});
    wrapper.execute_once(EffectType::ORDER_PLACEMENT, entity, [&](const EffectContext& ctx) {
      const std::uint64_t token = ctx.fencing_token;
      (void)!::write(fds[1], &token, sizeof token);
      std::this_thread::sleep_for(duration);
      return std::string("child");
    });
    status = 0;
  } catch (const LeaseLost&) {
    status = 10;
  } catch (...) {
    status = 1;
  }
  ::_exit(status);
}

// The worker's fencing token, or 0 when it never ran its effect.
std::uint64_t read_token(int fd) {
  std::uint64_t token = 0;
  const ssize_t n = ::read(fd, &token, sizeof token);
  ::close(fd);
  return n == sizeof token ? token : 0;
}

TEST(CrashTest, KilledWorkerIsRecoveredWithAHigherToken) {
  embedded::RedisServer server;
  TempDir journal;
  int ready = -1;
  const pid_t worker = start_worker(server, journal, "o-kill", 60s, ready);
  ASSERT_GT(worker, 0);
  const std::uint64_t token = read_token(ready);
  ASSERT_GT(token, 0u) << "the worker should run its effect";
  ::kill(worker, SIGKILL);
  ::waitpid(worker, nullptr, 0);

  SideEffectWrapper wrapper(std::make_shared<RedisEffectStore>(client_for(server)),
                            {.lease = kLease, .journal_directory = journal.path().string()});
  // Before the lease ends the effect is still someone else's.
  EXPECT_THROW(
      wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o-kill", [] { return std::string("x"); }),
      AlreadyInProgress);
  auto outcome = wrapper.execute_once(
      EffectType::ORDER_PLACEMENT, "o-kill",
      [](const EffectContext& ctx) {
        EXPECT_TRUE(ctx.recovering);
        return std::string("recovered");
      },
      CallOptions{.in_progress = InProgressPolicy::kWait, .wait_timeout = 5s});
  EXPECT_TRUE(outcome.executed);
  EXPECT_TRUE(outcome.recovered);
  EXPECT_EQ(outcome.fencing_token, token + 1);
}

TEST(CrashTest, PausedWorkersLateCommitIsRefusedAndTheRecoveryStands) {
  embedded::RedisServer server;
  TempDir journal;
  int ready = -1;
  // The worker's effect takes 300 ms of its own running time.
  const pid_t worker = start_worker(server, journal, "o-pause", 300ms, ready);
  ASSERT_GT(worker, 0);
  const std::uint64_t token = read_token(ready);
  ASSERT_GT(token, 0u);
  ::kill(worker, SIGSTOP);  // its lease renewals stop too

  SideEffectWrapper wrapper(std::make_shared<RedisEffectStore>(client_for(server)),
                            {.lease = kLease, .journal_directory = journal.path().string()});
  auto outcome = wrapper.execute_once(
      EffectType::ORDER_PLACEMENT, "o-pause", [] { return std::string("recovered"); },
      CallOptions{.in_progress = InProgressPolicy::kWait, .wait_timeout = 5s});
  EXPECT_TRUE(outcome.recovered);
  EXPECT_EQ(outcome.fencing_token, token + 1);

  ::kill(worker, SIGCONT);
  int status = 0;
  ::waitpid(worker, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 10) << "the paused worker's commit should get LeaseLost";
  auto again = wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o-pause",
                                    [] { return std::string("third"); });
  EXPECT_FALSE(again.executed);
  EXPECT_EQ(again.result, "recovered");
}

TEST(CrashTest, RedisKilledBetweenEffectAndCommitIsCommittedFromTheJournal) {
  embedded::RedisServer server({.config = {"appendonly yes", "appendfsync always"}});
  TempDir journal;
  auto store = std::make_shared<prodsafe::testing::FailingEffectStore>(
      std::make_shared<RedisEffectStore>(client_for(server)));
  SideEffectWrapper wrapper(store, {.lease = 30s,
                                    .commit_attempts = 2,
                                    .commit_retry_delay = 10ms,
                                    .journal_directory = journal.path().string()});
  int runs = 0;
  auto place = [&] {
    ++runs;
    server.kill();  // Redis dies after the effect ran, before its commit
    return std::string("filled");
  };
  auto outcome = wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o-redis", place);
  EXPECT_TRUE(outcome.executed);
  EXPECT_TRUE(outcome.commit_pending);
  EXPECT_EQ(outcome.result, "filled");
  EXPECT_EQ(wrapper.journal_pending(), 1u);

  server.restart();  // the claim (appendfsync always) survived; the result is only in the journal
  auto again = wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o-redis",
                                    [&] { return std::string("second run"); });
  EXPECT_FALSE(again.executed);
  EXPECT_EQ(again.result, "filled");
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(wrapper.journal_pending(), 0u);
}

TEST(CrashTest, RedisDownAtClaimRunsNothing) {
  embedded::RedisServer server;
  TempDir journal;
  SideEffectWrapper wrapper(std::make_shared<RedisEffectStore>(client_for(server)),
                            {.journal_directory = journal.path().string()});
  server.kill();
  int runs = 0;
  try {
    wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o1", [&] { return ++runs; });
    FAIL() << "no exception";
  } catch (const StoreUnavailable& error) {
    EXPECT_NE(std::string(error.what()).find("redis://127.0.0.1:"), std::string::npos);
  }
  EXPECT_EQ(runs, 0);
}

}  // namespace
}  // namespace prodsafe::idempotency
