// Exactly one execution per operation under contention: threads and processes.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <barrier>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "store_harness.hpp"

namespace prodsafe::idempotency {
namespace {

using namespace std::chrono_literals;
using prodsafe::testing::MemoryHarness;
using prodsafe::testing::RedisHarness;
using prodsafe::testing::TempDir;

constexpr int kThreads = 64;
constexpr int kRounds = 1000;

// Every thread races on the same key each round (a barrier lines them up);
// losers get the winner's result or AlreadyInProgress, never a second run.
template <class Harness>
void race_threads(Harness& harness) {
  WrapperOptions options = harness.wrapper_options();
  options.lease = 30s;
  options.renew_leases = false;
  SideEffectWrapper wrapper(harness.store(), options);
  std::vector<std::atomic<int>> runs(kRounds);
  std::atomic<int> answered{0};
  std::barrier line_up(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        line_up.arrive_and_wait();
        try {
          auto outcome = wrapper.execute_once(EffectType::ORDER_PLACEMENT,
                                              "race-" + std::to_string(round), [&] {
                                                runs[round].fetch_add(1);
                                                return t;
                                              });
          if (!outcome.executed) answered.fetch_add(1);
        } catch (const AlreadyInProgress&) {
          answered.fetch_add(1);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  int wrong = 0;
  for (int round = 0; round < kRounds; ++round) wrong += runs[round].load() != 1;
  EXPECT_EQ(wrong, 0) << "rounds without exactly one execution";
  EXPECT_EQ(answered.load(), kRounds * (kThreads - 1));
}

TEST(RaceTest, SixtyFourThreadsOneKeyPerRoundInMemory) {
  MemoryHarness harness;
  race_threads(harness);
}

TEST(RaceTest, SixtyFourThreadsOneKeyPerRoundOnRedis) {
  RedisHarness harness;
  race_threads(harness);
}

// Eight processes race over the same 1,000 keys; each execution appends one
// line to a shared ledger file (O_APPEND, one write per line), then the
// parent counts executions per key.
TEST(RaceTest, EightProcessesExactlyOneExecutionPerKey) {
  RedisHarness harness;  // starts the server before any fork
  TempDir ledger_dir;
  const std::string ledger = (ledger_dir.path() / "ledger").string();
  const std::string url = RedisHarness::server().url();
  constexpr int kProcesses = 8;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      int status = 0;
      try {
        auto client = std::make_shared<redis::Client>(
            url, redis::Options{.pool_size = 2, .key_prefix = "procs:"});
        SideEffectWrapper wrapper(std::make_shared<RedisEffectStore>(client),
                                  {.lease = 30s,
                                   .in_progress = InProgressPolicy::kWait,
                                   .journal_directory = (ledger_dir.path() / "journal").string()});
        const int fd = ::open(ledger.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0600);
        // Each process walks the keys from a different start, so they collide
        // everywhere rather than in lockstep.
        for (int i = 0; i < kRounds; ++i) {
          const int key = (i + p * (kRounds / kProcesses)) % kRounds;
          wrapper.execute_once(EffectType::LEDGER_WRITE, std::to_string(key), [&] {
            const std::string line = std::to_string(key) + "\n";
            if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
              status = 3;
            return p;
          });
        }
        ::close(fd);
      } catch (const std::exception& error) {
        std::fprintf(stderr, "child %d: %s\n", p, error.what());
        status = 2;
      }
      ::_exit(status);
    }
    children.push_back(child);
  }
  for (pid_t child : children) {
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a worker process failed";
  }
  std::map<int, int> executions;
  std::ifstream in(ledger);
  for (int key; in >> key;) ++executions[key];
  EXPECT_EQ(executions.size(), static_cast<std::size_t>(kRounds)) << "lost operations";
  int duplicated = 0;
  for (const auto& [key, count] : executions) duplicated += count != 1;
  EXPECT_EQ(duplicated, 0) << "operations executed more than once";
}

}  // namespace
}  // namespace prodsafe::idempotency
