// Durability (WAIT after a claim and a commit) against a real primary and
// replica: two embedded redis-servers, the second `replicaof` the first.
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/idempotency/in_memory_effect_store.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/info.hpp"
#include "store_harness.hpp"

namespace prodsafe::idempotency {
namespace {

using namespace std::chrono_literals;
using embedded::RedisServer;
using prodsafe::testing::TempDir;

long long calls_of(redis::Client& client, const std::string& name) {
  const std::string info = client.info("commandstats");
  const std::string field = "cmdstat_" + name + ":calls=";
  const std::size_t at = info.find(field);
  return at == std::string::npos ? 0 : std::stoll(info.substr(at + field.size()));
}

class DurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    replica_ = std::make_unique<RedisServer>(embedded::RedisServerOptions{
        .config = {"replicaof 127.0.0.1 " + std::to_string(primary_.port())}});
    redis::Client replica(replica_->url());
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (redis::parse_info(replica.info("replication")).get("master_link_status") != "up") {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the replica never synced";
      std::this_thread::sleep_for(20ms);
    }
    redis::Options options;
    options.command_timeout = 2s;
    client_ = std::make_shared<redis::Client>(primary_.url(), options);
    store_ = std::make_shared<RedisEffectStore>(client_);
  }

  std::unique_ptr<SideEffectWrapper> wrapper(Durability durability) {
    WrapperOptions options;
    options.durability = durability;
    options.journal_directory = journal_.path().string();
    options.commit_retry_delay = 10ms;
    return std::make_unique<SideEffectWrapper>(store_, options);
  }

  // No 5 s wait before the replica's first sync (repl-diskless-sync-delay).
  RedisServer primary_{embedded::RedisServerOptions{.config = {"repl-diskless-sync-delay 0"}}};
  std::unique_ptr<RedisServer> replica_;
  std::shared_ptr<redis::Client> client_;
  std::shared_ptr<RedisEffectStore> store_;
  TempDir journal_;
};

TEST_F(DurabilityTest, WithTheReplicaUpEveryClaimAndCommitWaitsForIt) {
  auto durable = wrapper({.replicas = 1, .timeout = 1000ms});
  // The first claim and commit load their scripts (NOSCRIPT, then EVAL and
  // WAIT again): counted apart.
  (void)durable->execute_once(EffectType::ORDER_PLACEMENT, "warm", [] { return 0; });
  const long long waits_before = calls_of(*client_, "wait");
  int runs = 0;
  for (int i = 0; i < 20; ++i) {
    const auto outcome = durable->execute_once(
        EffectType::ORDER_PLACEMENT, "o-" + std::to_string(i), [&runs] { return ++runs; });
    EXPECT_TRUE(outcome.executed);
    EXPECT_FALSE(outcome.commit_pending);
  }
  EXPECT_EQ(runs, 20);
  // One WAIT per claim and per commit, each pipelined with its script.
  EXPECT_EQ(calls_of(*client_, "wait") - waits_before, 40);
  // What WAIT waited for is on the replica.
  redis::Client replica(replica_->url());
  EXPECT_EQ(replica.command({"HGET", "effect:ORDER_PLACEMENT:o-7", "state"}).str(), "completed");
}

TEST_F(DurabilityTest, AClaimNoReplicaAcknowledgedIsNotUsed) {
  auto durable = wrapper({.replicas = 1, .timeout = 100ms});
  replica_->pause();
  bool ran = false;
  try {
    durable->execute_once(EffectType::ORDER_PLACEMENT, "o-1", [&ran] {
      ran = true;
      return 1;
    });
    ADD_FAILURE() << "no error";
  } catch (const ReplicationShortfall& error) {
    EXPECT_TRUE(error.retryable());
    EXPECT_EQ(error.acknowledged(), 0);
    EXPECT_EQ(error.requested(), 1);
    const std::string message = error.what();
    EXPECT_NE(message.find("acknowledged by 0 of 1 replica(s) within 100 ms"), std::string::npos)
        << message;
    EXPECT_NE(message.find("not run"), std::string::npos) << message;
    EXPECT_NE(message.find("released"), std::string::npos) << message;
  }
  EXPECT_FALSE(ran);
  // Released: the next call, with the replica back, runs it at once.
  const auto record = store_->inspect("effect:ORDER_PLACEMENT:o-1");
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->state, "released");
  replica_->resume();
  // A replica just woken can take more than 100 ms to acknowledge: time to spare.
  const auto outcome = wrapper({.replicas = 1, .timeout = 5000ms})
                           ->execute_once(EffectType::ORDER_PLACEMENT, "o-1", [&ran] {
                             ran = true;
                             return 2;
                           });
  EXPECT_TRUE(outcome.executed);
  EXPECT_EQ(outcome.result, 2);
}

TEST_F(DurabilityTest, ACommitThatFallsShortIsRetriedThenJournaledThenCommitted) {
  // A replica that has just synced can take longer than 100 ms to answer its
  // first GETACK: one call with time to spare first (it loads the scripts too).
  (void)wrapper({.replicas = 1, .timeout = 5000ms})
      ->execute_once(EffectType::LEDGER_WRITE, "warm", [] { return 0; });
  auto durable = wrapper({.replicas = 1, .timeout = 100ms});
  int runs = 0;
  const auto outcome = durable->execute_once(EffectType::LEDGER_WRITE, "l-1", [&] {
    replica_->pause();  // after the claim was acknowledged, before the commit
    return ++runs;
  });
  EXPECT_TRUE(outcome.executed);
  EXPECT_EQ(outcome.result, 1);
  EXPECT_TRUE(outcome.commit_pending) << "the commit should have gone to the journal";
  // The warm-up's two, the claim's, three commit attempts, and the
  // background thread's tries from the journal.
  EXPECT_GE(calls_of(*client_, "wait"), 2 + 1 + 3);
  replica_->resume();
  EXPECT_EQ(durable->flush_journal(), 0u);
  redis::Client replica(replica_->url());
  EXPECT_EQ(replica.command({"HGET", "effect:LEDGER_WRITE:l-1", "state"}).str(), "completed");
  // A duplicate gets the result; the effect never ran twice.
  EXPECT_FALSE(
      durable->execute_once(EffectType::LEDGER_WRITE, "l-1", [&] { return ++runs; }).executed);
  EXPECT_EQ(runs, 1);
}

TEST_F(DurabilityTest, AnEmptiedScriptCacheIsRefilledWithDurabilityOn) {
  auto durable = wrapper({.replicas = 1, .timeout = 1000ms});
  (void)durable->execute_once(EffectType::PNL_WRITE, "p-1", [] { return 1; });
  client_->command({"SCRIPT", "FLUSH"});
  const long long evals_before = calls_of(*client_, "eval");
  const auto outcome = durable->execute_once(EffectType::PNL_WRITE, "p-2", [] { return 2; });
  EXPECT_TRUE(outcome.executed);
  EXPECT_FALSE(outcome.commit_pending);
  EXPECT_EQ(calls_of(*client_, "eval") - evals_before, 2);  // claim and finish reloaded once each
}

TEST_F(DurabilityTest, WaitaofBeforeRedis72IsAConfigErrorSayingWhatToChange) {
  const std::string version =
      redis::parse_info(client_->info("server")).get("redis_version").value_or("");
  if (version.rfind("7.0", 0) != 0 && version.rfind("6.", 0) != 0) {
    GTEST_SKIP() << "this redis-server (" << version << ") has WAITAOF";
  }
  auto durable = wrapper({.replicas = 1, .timeout = 100ms, .aof = true});
  bool ran = false;
  try {
    durable->execute_once(EffectType::ORDER_PLACEMENT, "a-1", [&ran] {
      ran = true;
      return 1;
    });
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("7.2"), std::string::npos) << message;
    EXPECT_NE(message.find("Durability::aof"), std::string::npos) << message;
  }
  EXPECT_FALSE(ran);
}

TEST_F(DurabilityTest, NoReplicasFromMinReplicasToWriteIsRetryableAndTheEffectDoesNotRun) {
  client_->command({"CONFIG", "SET", "min-replicas-to-write", "2"});
  auto plain = wrapper({});
  bool ran = false;
  try {
    plain->execute_once(EffectType::ORDER_PLACEMENT, "n-1", [&ran] {
      ran = true;
      return 1;
    });
    ADD_FAILURE() << "no error";
  } catch (const ReplyError& error) {
    EXPECT_EQ(error.prefix(), "NOREPLICAS");
    EXPECT_TRUE(error.retryable());
  }
  EXPECT_FALSE(ran);
}

TEST(DurabilityOptionsTest, AStoreWithoutReplicasAndOutOfRangeValuesAreRefused) {
  auto memory = std::make_shared<InMemoryEffectStore>();
  WrapperOptions options;
  options.durability.replicas = 1;
  EXPECT_THROW(SideEffectWrapper(memory, options), InvalidArgument);
  options.durability = {};
  options.per_type["ORDER_PLACEMENT"].durability = Durability{.replicas = 1};
  EXPECT_THROW(SideEffectWrapper(memory, options), InvalidArgument);
  // The same refusal names the fields when the values are wrong.
  for (const Durability bad : {Durability{.replicas = -1}, Durability{.replicas = 101},
                               Durability{.replicas = 1, .timeout = 0ms},
                               Durability{.replicas = 1, .timeout = std::chrono::hours(25)}}) {
    WrapperOptions wrong;
    wrong.durability = bad;
    try {
      SideEffectWrapper refused(memory, wrong);
      ADD_FAILURE() << "accepted";
    } catch (const InvalidArgument& error) {
      EXPECT_NE(std::string(error.what()).find("WrapperOptions::durability."), std::string::npos)
          << error.what();
    }
  }
}

}  // namespace
}  // namespace prodsafe::idempotency
