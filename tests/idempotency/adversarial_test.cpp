// The faults nobody planned: refusals at commit, results that cannot
// be encoded, journals left behind, a cache that outlives or hides its record,
// effects that outlive their record. Each test failed before its fix.
#include <cmath>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "commit_journal.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "store_harness.hpp"
#include "support/failing_effect_store.hpp"
#include "wrapper_fixture.hpp"

namespace prodsafe::idempotency {
namespace {

using namespace std::chrono_literals;
using prodsafe::testing::eventually;
using prodsafe::testing::FailingEffectStore;
using prodsafe::testing::MemoryHarness;
using prodsafe::testing::RedisHarness;

template <class Harness>
class AdversarialTest : public prodsafe::testing::WrapperFixture<Harness> {};

TYPED_TEST_SUITE(AdversarialTest, prodsafe::testing::Harnesses, prodsafe::testing::HarnessNames);

// An exchange answer with a Latin-1 byte made json::dump() throw after
// the order was placed; the claim was released and the next call placed it again.
TYPED_TEST(AdversarialTest, AResultThatCannotBeEncodedNeverLetsTheEffectRunAgain) {
  auto wrapper = this->make();
  int runs = 0;
  const auto place = [&runs] {
    ++runs;
    return std::map<std::string, std::string>{{"order_id", "7"}, {"venue", "Z\xfcrich"}};
  };
  const auto first = wrapper->execute_once(EffectType::ORDER_PLACEMENT, "latin1", place);
  EXPECT_TRUE(first.executed);
  EXPECT_TRUE(first.result_unavailable);
  EXPECT_EQ(first.result.at("order_id"), "7") << "the caller still gets what the effect returned";
  try {
    wrapper->execute_once(EffectType::ORDER_PLACEMENT, "latin1", place);
    FAIL() << "no exception";
  } catch (const ResultUnavailable& error) {
    EXPECT_EQ(error.key(), "effect:ORDER_PLACEMENT:latin1");
    EXPECT_FALSE(error.retryable());
    EXPECT_NE(std::string(error.what()).find("effect:ORDER_PLACEMENT:latin1"), std::string::npos);
  }
  EXPECT_EQ(runs, 1) << "the order was placed twice";
  EXPECT_EQ(wrapper->stats().encode_errors, 1u);
  EXPECT_EQ(wrapper->stats().results_unavailable, 1u);
}

TYPED_TEST(AdversarialTest, NanAndInfinityFailToEncodeTheSameWay) {
  auto wrapper = this->make();
  int runs = 0;
  for (const double value : {std::nan(""), HUGE_VAL, -HUGE_VAL}) {
    const std::string id = "pnl-" + std::to_string(runs);
    const auto write = [&runs, value] {
      ++runs;
      return std::vector<double>{1.0, value};
    };
    const auto first = wrapper->execute_once(EffectType::PNL_WRITE, id, write);
    EXPECT_TRUE(first.result_unavailable) << value << " was stored as something else";
    EXPECT_THROW(wrapper->execute_once(EffectType::PNL_WRITE, id, write), ResultUnavailable);
  }
  EXPECT_EQ(runs, 3);
}

// With the refusal injected: every kind of failure at commit.
TYPED_TEST(AdversarialTest, ACommitThatFailsAnyWayIsJournaledNotThrown) {
  auto wrapper = this->make();
  int runs = 0;
  this->store->before_commit = [] {
    throw DecodeError("effect record is not valid: garbage written mid-run");
  };
  const auto first = wrapper->execute_once(EffectType::LEDGER_WRITE, "l1", [&] { return ++runs; });
  EXPECT_TRUE(first.commit_pending);
  EXPECT_EQ(first.result, 1);
  this->store->before_commit = nullptr;
  EXPECT_EQ(wrapper->flush_journal(), 0u);
  EXPECT_EQ(this->store->inspect("effect:LEDGER_WRITE:l1")->result, "1");
}

// A journaled result used to wait for this process's next call; a
// worker that got no more work let its lease end and another ran it again.
TYPED_TEST(AdversarialTest, AJournaledResultIsCommittedAsSoonAsTheStoreAnswers) {
  auto wrapper = this->make();
  this->store->fail_commits = -1;  // the store is down at commit...
  const auto first =
      wrapper->execute_once(EffectType::ORDER_PLACEMENT, "o-1", [] { return std::string("f"); });
  ASSERT_TRUE(first.commit_pending);
  this->store->fail_commits = 0;  // ...and comes back; no further call arrives
  EXPECT_TRUE(eventually([&] { return wrapper->journal_pending() == 0; }))
      << "the journal waited for a call that never came";
  const auto record = this->store->inspect("effect:ORDER_PLACEMENT:o-1");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, "completed");
  EXPECT_EQ(record->result, "f");
  EXPECT_EQ(wrapper->stats().journal_committed, 1u);
}

// A result refused for good (a damaged record, a value over Redis's limit)
// used to be retried before every call of every key: each paid a round trip.
TYPED_TEST(AdversarialTest, ACallPaysOnlyForItsOwnKeysJournaledResult) {
  WrapperOptions options = this->options();
  options.journal_flush_interval = std::chrono::hours(1);  // no background flush here
  auto wrapper = this->make(options);
  this->store->fail_commits = -1;
  ASSERT_TRUE(
      wrapper->execute_once(EffectType::ORDER_PLACEMENT, "stuck", [] { return 1; }).commit_pending);
  const int before = this->store->commits.load();
  wrapper->execute_once(EffectType::ORDER_PLACEMENT, "other", [] { return 2; });
  EXPECT_EQ(this->store->commits.load() - before, options.commit_attempts)
      << "a call for another key tried the stuck entry too";
  this->store->fail_commits = 0;
  EXPECT_EQ(wrapper->flush_journal(), 0u);
}

// A full disk (or an unwritable journal directory) at the moment a commit
// fails: the result cannot be made durable, but while the process lives it
// must still reach the store, not stay only in the caller's hands.
TYPED_TEST(AdversarialTest, AResultTheJournalCannotWriteIsStillCommittedByThisProcess) {
  WrapperOptions options = this->options();
  options.journal_directory = "/proc/prodsafe-cannot-write-here";
  auto wrapper = this->make(options);
  this->store->fail_commits = -1;
  const auto outcome =
      wrapper->execute_once(EffectType::ORDER_PLACEMENT, "disk-full", [] { return 7; });
  EXPECT_TRUE(outcome.commit_pending);
  EXPECT_EQ(outcome.result, 7);
  EXPECT_EQ(wrapper->journal_pending(), 1u) << "held in memory when the file cannot be written";
  this->store->fail_commits = 0;
  EXPECT_TRUE(eventually([&] {
    const auto record = this->store->inspect("effect:ORDER_PLACEMENT:disk-full");
    return record && record->state == "completed";
  })) << "the result stayed only in the caller's hands";
}

// The journals of dead processes were adopted only at start-up.
TYPED_TEST(AdversarialTest, ADeadProcesssJournalIsAdoptedWhileRunning) {
  WrapperOptions options = this->options();
  options.journal_scan_interval = 50ms;
  auto wrapper = this->make(options);
  // Another process of the same store claims, runs, journals, and dies.
  const Claim claim = this->store->claim("effect:ORDER_PLACEMENT:dead", "", 60s, 120s);
  {
    CommitJournal dead(options.journal_directory, this->store->identity());
    dead.append(JournalEntry{"effect:ORDER_PLACEMENT:dead", claim.holder(), 120s, 60s,
                             FinalState::kCompleted, "", "\"from the dead\""});
  }
  EXPECT_TRUE(eventually([&] {
    const auto record = this->store->inspect("effect:ORDER_PLACEMENT:dead");
    return record && record->state == "completed";
  })) << "the orphan waited for a restart";
  EXPECT_EQ(this->store->inspect("effect:ORDER_PLACEMENT:dead")->result, "\"from the dead\"");
  EXPECT_TRUE(eventually([&] { return wrapper->journal_pending() == 0; }));
}

// A wrapper of another store (another key prefix here) must never
// commit a journal that is not its own.
TYPED_TEST(AdversarialTest, AJournalIsNeverCommittedIntoAnotherStore) {
  WrapperOptions options = this->options();
  const Claim claim = this->store->claim("effect:ORDER_PLACEMENT:x", "", 60s, 120s);
  {
    CommitJournal dead(options.journal_directory, "redis 10.0.0.9:6379 db 0 prefix prod:");
    dead.append(JournalEntry{"effect:ORDER_PLACEMENT:x", claim.holder(), 120s, 60s,
                             FinalState::kCompleted, "", "\"prod's\""});
  }
  auto wrapper = this->make(options);
  EXPECT_EQ(wrapper->journal_pending(), 0u);
  EXPECT_EQ(this->store->inspect("effect:ORDER_PLACEMENT:x")->state, "in_progress");
}

TYPED_TEST(AdversarialTest, AnExplicitNamespaceIsTheJournalsStore) {
  WrapperOptions options = this->options();
  options.journal_namespace = "orders-eu";
  const Claim claim = this->store->claim("effect:ORDER_PLACEMENT:ns", "", 60s, 120s);
  {
    CommitJournal dead(options.journal_directory, "namespace orders-eu");
    dead.append(JournalEntry{"effect:ORDER_PLACEMENT:ns", claim.holder(), 120s, 60s,
                             FinalState::kCompleted, "", "1"});
  }
  auto wrapper = this->make(options);
  EXPECT_EQ(wrapper->journal_pending(), 0u);
  EXPECT_EQ(this->store->inspect("effect:ORDER_PLACEMENT:ns")->state, "completed");
}

// The cache kept the caller's fingerprint, so after a call without
// one, a different request for the same id was answered from the cache.
TYPED_TEST(AdversarialTest, TheCacheNeverHidesAConflict) {
  WrapperOptions options = this->options();
  options.result_cache_size = 16;
  auto wrapper = this->make(options);
  const auto place = [] { return 1; };
  wrapper->execute_once(EffectType::ORDER_PLACEMENT, "c", place, {.fingerprint = "qty=1"});
  const auto plain = wrapper->execute_once(EffectType::ORDER_PLACEMENT, "c", place);
  EXPECT_FALSE(plain.executed);
  EXPECT_THROW(
      wrapper->execute_once(EffectType::ORDER_PLACEMENT, "c", place, {.fingerprint = "qty=2"}),
      Conflict);
  EXPECT_TRUE(
      wrapper->execute_once(EffectType::ORDER_PLACEMENT, "c", place, {.fingerprint = "qty=1"})
          .from_cache);
}

// An entry lived `ttl` from when it was cached, not from the record's
// claim: a duplicate late in the record's life kept it in the cache after the
// record was gone.
TYPED_TEST(AdversarialTest, ACachedResultNeverOutlivesItsRecord) {
  WrapperOptions options = this->options();
  options.ttl = 1000ms;
  auto writer = this->make(options);
  options.result_cache_size = 16;
  auto reader = this->make(options);
  int runs = 0;
  const auto place = [&runs] { return ++runs; };
  writer->execute_once(EffectType::ORDER_PLACEMENT, "t", place);
  this->harness.advance(600ms);
  EXPECT_FALSE(reader->execute_once(EffectType::ORDER_PLACEMENT, "t", place).executed);
  this->harness.advance(600ms);  // the record expired
  const auto late = reader->execute_once(EffectType::ORDER_PLACEMENT, "t", place);
  EXPECT_FALSE(late.from_cache) << "answered from a cache entry that outlived its record";
  EXPECT_TRUE(late.executed);
  EXPECT_EQ(runs, 2);
}

// A retryable exception (a timeout, an unreachable dependency) says
// "try again"; recording it as a failure refused every later try.
TYPED_TEST(AdversarialTest, RetryableExceptionsAreNotRecordedAsFailures) {
  WrapperOptions options = this->options();
  options.record_failures = true;
  auto wrapper = this->make(options);
  EXPECT_THROW(wrapper->execute_once(EffectType::ORDER_PLACEMENT, "r",
                                     []() -> int { throw Timeout("the exchange did not answer"); }),
               Timeout);
  const auto retried = wrapper->execute_once(EffectType::ORDER_PLACEMENT, "r", [] { return 5; });
  EXPECT_TRUE(retried.executed);
  EXPECT_TRUE(retried.recovered) << "the timed-out run may have placed the order";
  EXPECT_THROW(wrapper->execute_once(EffectType::ORDER_PLACEMENT, "f",
                                     []() -> int { throw std::runtime_error("rejected"); }),
               std::runtime_error);
  EXPECT_THROW(wrapper->execute_once(EffectType::ORDER_PLACEMENT, "f", [] { return 5; }),
               EffectFailed);
}

// Against a real redis-server: maxmemory reached with noeviction
// between the effect and its commit.
TEST(CommitRefusalTest, OutOfMemoryAtCommitIsJournaledAndCommittedWhenMemoryIsFreed) {
  RedisHarness harness;
  auto& client = harness.client();
  struct RestoreMemory {
    redis::Client& client;
    ~RestoreMemory() { client.command({"CONFIG", "SET", "maxmemory", "0"}); }
  } restore{client};
  client.command({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
  WrapperOptions options = harness.wrapper_options();
  options.commit_retry_delay = 1ms;
  SideEffectWrapper wrapper(harness.store(), options);
  int runs = 0;
  const auto outcome = wrapper.execute_once(EffectType::ORDER_PLACEMENT, "oom", [&] {
    ++runs;
    client.command({"CONFIG", "SET", "maxmemory", "1"});  // memory runs out mid-effect
    return std::string("filled");
  });
  EXPECT_TRUE(outcome.executed);
  EXPECT_TRUE(outcome.commit_pending) << "the OOM refusal dropped the result";
  EXPECT_EQ(outcome.result, "filled");
  EXPECT_EQ(harness.store()->inspect("effect:ORDER_PLACEMENT:oom")->state, "in_progress");
  client.command({"CONFIG", "SET", "maxmemory", "0"});
  EXPECT_TRUE(eventually([&] { return wrapper.journal_pending() == 0; }));
  const auto record = harness.store()->inspect("effect:ORDER_PLACEMENT:oom");
  EXPECT_EQ(record->state, "completed");
  EXPECT_EQ(record->result, "filled");
  EXPECT_EQ(runs, 1);
}

// With real time (renewal runs on it): an effect longer than its
// record's TTL keeps the record, so nobody claims it beside the live run.
TEST(LongEffectTest, AnEffectThatOutlivesItsTtlKeepsItsRecord) {
  RedisHarness harness;
  auto store = harness.store();
  WrapperOptions options = harness.wrapper_options();
  options.lease = RedisHarness::lease();
  SideEffectWrapper wrapper(store, options);
  const CallOptions call{.ttl = RedisHarness::lease() * 2};
  const auto outcome = wrapper.execute_once(
      EffectType::LEDGER_WRITE, "long",
      [&] {
        for (int i = 0; i < 8; ++i) {  // two TTLs long
          std::this_thread::sleep_for(RedisHarness::lease() / 2);
          const Claim other = store->claim("effect:LEDGER_WRITE:long", "", RedisHarness::lease(),
                                           RedisHarness::lease() * 2);
          EXPECT_EQ(other.status, ClaimStatus::kInProgress)
              << "after " << (i + 1) << " half leases";
        }
        return 1;
      },
      call);
  EXPECT_TRUE(outcome.executed);
  EXPECT_FALSE(outcome.recovered);
  EXPECT_EQ(store->inspect("effect:LEDGER_WRITE:long")->state, "completed");
}

// With real time: a journaled effect's lease is renewed until it is
// committed, so a short outage does not let another worker run it again.
TEST(LongEffectTest, AJournaledEffectKeepsItsLeaseUntilCommitted) {
  RedisHarness harness;
  auto store = std::make_shared<FailingEffectStore>(harness.store());
  WrapperOptions options = harness.wrapper_options();
  options.lease = RedisHarness::lease();
  options.commit_retry_delay = 1ms;
  SideEffectWrapper wrapper(store, options);
  store->fail_commits = -1;
  const auto outcome =
      wrapper.execute_once(EffectType::ORDER_PLACEMENT, "j", [] { return std::string("r"); });
  ASSERT_TRUE(outcome.commit_pending);
  for (int i = 0; i < 6; ++i) {  // three leases
    std::this_thread::sleep_for(RedisHarness::lease() / 2);
    EXPECT_EQ(store->claim("effect:ORDER_PLACEMENT:j", "", RedisHarness::lease(), 60s).status,
              ClaimStatus::kInProgress)
        << "another worker could recover a journaled effect after " << (i + 1) << " half leases";
  }
  store->fail_commits = 0;
  EXPECT_TRUE(eventually([&] { return wrapper.journal_pending() == 0; }));
  EXPECT_EQ(store->inspect("effect:ORDER_PLACEMENT:j")->result, "r");
}

}  // namespace
}  // namespace prodsafe::idempotency
