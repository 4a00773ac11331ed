// A chaos worker with WorkerSpec::wait_replicas against a real redis-server:
// a claim that no replica acknowledges (ReplicationShortfall) is a store
// refusal the worker retries and counts, not an unexpected error that stops
// the op.
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chaos/history/ledger.hpp"
#include "chaos/worker/worker.hpp"
#include "prodsafe/embedded/redis_server.hpp"

namespace prodsafe::chaos {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class WorkerDurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (fs::temp_directory_path() / "prodsafe-worker-durability-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
    for (const char* sub : {"ledgers", "files", "journal"})
      fs::create_directories(directory_ / sub);
  }
  void TearDown() override { fs::remove_all(directory_); }

  WorkerSpec spec(const std::string& url) const {
    WorkerSpec spec;
    spec.name = "w1";
    spec.redis_url = url;
    spec.op_count = 1;
    spec.journal_directory = (directory_ / "journal").string();
    spec.ledger_directory = (directory_ / "ledgers").string();
    spec.files_directory = (directory_ / "files").string();
    spec.retry_backoff_initial = 10ms;
    spec.retry_backoff_max = 50ms;
    spec.op_deadline = 800ms;
    spec.exit_flush_deadline = 100ms;
    return spec;
  }

  static WorkerStats stats_of(const WorkerSpec& spec) {
    std::ifstream in(stats_path(spec));
    return nlohmann::json::parse(in).get<WorkerStats>();
  }

  fs::path directory_;
};

TEST_F(WorkerDurabilityTest, AClaimNoReplicaAcknowledgesIsRetriedAndCounted) {
  embedded::RedisServer server;  // no replica: WAIT 1 answers 0 after its timeout
  WorkerSpec durable = spec(server.url());
  durable.wait_replicas = 1;
  // Every attempt falls short until op_deadline: the op is given up, not
  // failed.
  EXPECT_EQ(run_worker(durable), kWorkerGaveUp);
  const WorkerStats stats = stats_of(durable);
  EXPECT_EQ(stats.unexpected_errors, 0U) << (stats.errors.empty() ? "" : stats.errors.front());
  EXPECT_GE(stats.replication_shortfalls, 2U) << "retried after the first shortfall";
  EXPECT_EQ(stats.store_errors, 0U) << "a shortfall is not an unreachable store";
  EXPECT_EQ(stats.gave_up, 1U);
  EXPECT_EQ(stats.executed, 0U);
  // The effect never ran: a claim that fell short is not used.
  EXPECT_TRUE(read_ledgers(durable.ledger_directory).entries.empty());
}

TEST_F(WorkerDurabilityTest, WithoutDurabilityTheSameServerAnswersAtOnce) {
  embedded::RedisServer server;
  const WorkerSpec plain = spec(server.url());
  EXPECT_EQ(run_worker(plain), kWorkerOk);
  const WorkerStats stats = stats_of(plain);
  EXPECT_EQ(stats.executed, 1U);
  EXPECT_EQ(stats.replication_shortfalls, 0U);
}

}  // namespace
}  // namespace prodsafe::chaos
