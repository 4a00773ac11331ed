// A transient refusal at commit time (LOADING while a restarted Redis reads
// its AOF, BUSY, READONLY during a failover) after the effect ran: the result
// must be retried and then journaled, like an unreachable store, never
// dropped. Found by the chaos suite (kill_redis, appendfsync always): the
// dropped result made the caller retry, wait out its own lease, recover and
// run the effect a second time.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/core/clock.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/idempotency/in_memory_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "store_harness.hpp"

namespace prodsafe::idempotency {
namespace {

using namespace std::chrono_literals;

// Commits answer `reply` (an error reply) while `refusals` is above zero.
class RefusingStore final : public EffectStore {
 public:
  explicit RefusingStore(Clock* clock) : inner_(clock) {}

  std::atomic<int> refusals{0};
  std::string reply = "LOADING Redis is loading the dataset in memory";
  std::string refused_key;  // empty: every key is refused
  std::atomic<int> finishes{0};

  Claim claim(std::string_view key, std::string_view fingerprint, milliseconds lease,
              milliseconds ttl) override {
    return inner_.claim(key, fingerprint, lease, ttl);
  }
  FinishStatus finish(std::string_view key, const Holder& holder, FinalState state,
                      std::string_view payload, std::string_view fingerprint,
                      milliseconds ttl) override {
    ++finishes;
    if (refusals.load() > 0 && (refused_key.empty() || key == refused_key)) {
      --refusals;
      throw ReplyError(reply, "Lua script 'effect finish'");
    }
    return inner_.finish(key, holder, state, payload, fingerprint, ttl);
  }
  bool release(std::string_view key, const Holder& holder) override {
    return inner_.release(key, holder);
  }
  bool renew(std::string_view key, const Holder& holder, milliseconds lease, milliseconds ttl,
             std::string_view fingerprint) override {
    return inner_.renew(key, holder, lease, ttl, fingerprint);
  }
  std::optional<EffectRecord> inspect(std::string_view key) override { return inner_.inspect(key); }
  bool clear(std::string_view key) override { return inner_.clear(key); }
  std::string identity() const override { return inner_.identity(); }

 private:
  InMemoryEffectStore inner_;
};

struct Fixture {
  ManualClock clock;
  std::shared_ptr<RefusingStore> store = std::make_shared<RefusingStore>(&clock);
  prodsafe::testing::TempDir journal;
  SideEffectWrapper wrapper{store, WrapperOptions{.lease = 10s,
                                                  .renew_leases = false,
                                                  .journal_directory = journal.path().string(),
                                                  .clock = &clock}};
  int runs = 0;

  Outcome<int> place() {
    return wrapper.execute_once(EffectType::ORDER_PLACEMENT, "42", [&] { return ++runs; });
  }
};

TEST(TransientReplyTest, ALoadingReplyAtCommitIsRetried) {
  Fixture f;
  f.store->refusals = 1;
  const auto first = f.place();
  EXPECT_TRUE(first.executed);
  EXPECT_FALSE(first.commit_pending) << "the second attempt commits";
  const auto again = f.place();
  EXPECT_FALSE(again.executed);
  EXPECT_EQ(again.result, 1);
  EXPECT_EQ(f.runs, 1);
}

TEST(TransientReplyTest, ALastingLoadingReplyJournalsTheResultInsteadOfDroppingIt) {
  Fixture f;
  f.store->refusals = 1000;
  const auto first = f.place();
  EXPECT_TRUE(first.executed);
  EXPECT_TRUE(first.commit_pending);
  EXPECT_EQ(f.wrapper.journal_pending(), 1u);
  EXPECT_EQ(f.wrapper.flush_journal(), 1u) << "still LOADING: the entry stays, it is not dropped";

  f.store->refusals = 0;  // Redis has loaded its data
  const auto again = f.place();
  EXPECT_FALSE(again.executed) << "the journal is committed before the claim";
  EXPECT_EQ(again.result, 1);
  EXPECT_EQ(f.runs, 1);
  EXPECT_EQ(f.wrapper.journal_pending(), 0u);
}

// With maxmemory and noeviction (what prodsafe recommends)
// the commit gets OOM; min-replicas-to-write gives NOREPLICAS, a failing
// BGSAVE gives MISCONF. The effect has run: the result must be journaled and
// committed later, never handed back as an error that drops it.
TEST(TransientReplyTest, EveryRefusalAtCommitJournalsTheResultInsteadOfDroppingIt) {
  for (const char* reply :
       {"OOM command not allowed when used memory > 'maxmemory'.",
        "NOREPLICAS Not enough good replicas to write.",
        "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist "
        "to disk.",
        "ERR something is wrong with the script"}) {
    Fixture f;
    f.store->reply = reply;
    f.store->refusals = 1000;
    const auto first = f.place();
    EXPECT_TRUE(first.executed) << reply;
    EXPECT_TRUE(first.commit_pending) << reply;
    EXPECT_EQ(first.result, 1) << reply;
    EXPECT_EQ(f.wrapper.journal_pending(), 1u) << reply;
    EXPECT_EQ(f.wrapper.stats().commit_pending, 1u) << reply;

    f.store->refusals = 0;  // memory was freed, a replica came back, the disk has room
    EXPECT_EQ(f.wrapper.flush_journal(), 0u) << reply;
    const auto again = f.place();
    EXPECT_FALSE(again.executed) << reply;
    EXPECT_EQ(again.result, 1) << reply;
    EXPECT_EQ(f.runs, 1) << reply;
  }
}

// Flushing the journal asks the error's retryable(), like every other
// decision: a refusal that says "try again soon" (LOADING, OOM, READONLY...)
// is the whole store's, so the flush stops and tries again next interval
// instead of spending a round trip per entry on it.
struct TwoJournaled {
  ManualClock clock;
  std::shared_ptr<RefusingStore> store = std::make_shared<RefusingStore>(&clock);
  prodsafe::testing::TempDir journal;
  // The background thread stays out of the way: only flush_journal() commits.
  SideEffectWrapper wrapper{store, WrapperOptions{.lease = 10s,
                                                  .renew_leases = false,
                                                  .commit_attempts = 1,
                                                  .journal_directory = journal.path().string(),
                                                  .journal_flush_interval = 1h,
                                                  .journal_scan_interval = 0ms,
                                                  .clock = &clock}};

  explicit TwoJournaled(const std::string& reply, const std::string& refused_key = "") {
    store->reply = reply;
    store->refused_key = refused_key;
    store->refusals = 1000;
    for (const char* id : {"1", "2"}) {
      keys.push_back(wrapper.execute_once(EffectType::ORDER_PLACEMENT, id, [] { return 7; }).key);
    }
  }

  std::vector<std::string> keys;  // in the order they were journaled
};

TEST(TransientReplyTest, ARetryableRefusalStopsTheFlushAtTheFirstEntry) {
  for (const char* reply : {"LOADING Redis is loading the dataset in memory",
                            "OOM command not allowed when used memory > 'maxmemory'."}) {
    TwoJournaled f(reply);
    ASSERT_EQ(f.wrapper.journal_pending(), 2u) << reply;
    const int before = f.store->finishes.load();
    EXPECT_EQ(f.wrapper.flush_journal(), 2u) << reply;
    EXPECT_EQ(f.store->finishes.load() - before, 1) << reply << ": one round trip, then later";
  }
}

TEST(TransientReplyTest, ARefusalThatIsNotRetryableSkipsOnlyItsOwnEntry) {
  TwoJournaled f("ERR something is wrong with the script");
  ASSERT_EQ(f.wrapper.journal_pending(), 2u);
  f.store->refused_key = f.keys.front();  // the first entry stays refused, the second is not
  EXPECT_EQ(f.wrapper.flush_journal(), 1u) << "the entry after the refused one was committed";
  f.store->refusals = 0;
  EXPECT_EQ(f.wrapper.flush_journal(), 0u);
}

}  // namespace
}  // namespace prodsafe::idempotency
