// SideEffectWrapper's semantics against both stores, with failures injected
// through FailingEffectStore.
#include <atomic>
#include <functional>
#include <map>
#include <stdexcept>

#include <gtest/gtest.h>

#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "store_harness.hpp"
#include "support/failing_effect_store.hpp"
#include "wrapper_fixture.hpp"

namespace prodsafe::idempotency {
namespace {

using namespace std::chrono_literals;
using prodsafe::testing::FailingEffectStore;
using prodsafe::testing::MemoryHarness;
using prodsafe::testing::RedisHarness;

template <class Harness>
class WrapperTest : public prodsafe::testing::WrapperFixture<Harness> {};

TYPED_TEST_SUITE(WrapperTest, prodsafe::testing::Harnesses, prodsafe::testing::HarnessNames);

TYPED_TEST(WrapperTest, RunsOnceAndReturnsTheCachedResultAfterwards) {
  auto wrapper = this->make();
  int runs = 0;
  std::uint64_t token = 0;
  auto place = [&](const EffectContext& ctx) {
    ++runs;
    EXPECT_EQ(ctx.key, "effect:ORDER_PLACEMENT:order-1");
    token = ctx.fencing_token;
    EXPECT_GE(token, 1u);
    EXPECT_FALSE(ctx.recovering);
    return std::map<std::string, std::string>{{"order_id", "12345"}, {"status", "filled"}};
  };
  auto [executed, result] = wrapper->execute_once(EffectType::ORDER_PLACEMENT, "order-1", place);
  EXPECT_TRUE(executed);
  EXPECT_EQ(result.at("order_id"), "12345");
  auto second = wrapper->execute_once(EffectType::ORDER_PLACEMENT, "order-1", place);
  EXPECT_FALSE(second.executed);
  EXPECT_EQ(second.result.at("status"), "filled");
  EXPECT_EQ(second.fencing_token, token);
  EXPECT_EQ(second.key, "effect:ORDER_PLACEMENT:order-1");
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(wrapper->stats().executed, 1u);
  EXPECT_EQ(wrapper->stats().duplicates, 1u);
}

TYPED_TEST(WrapperTest, FunctionsWithoutContextAndStringResults) {
  auto wrapper = this->make();
  auto outcome = wrapper->execute_once(EffectType::LEDGER_WRITE, "entry-9",
                                       [] { return std::string("raw\0bytes", 9); });
  EXPECT_TRUE(outcome.executed);
  auto again = wrapper->execute_once(EffectType::LEDGER_WRITE, "entry-9",
                                     [] { return std::string("other"); });
  EXPECT_EQ(again.result, std::string("raw\0bytes", 9));
}

TYPED_TEST(WrapperTest, TypesAndIdsAreSeparateKeys) {
  auto wrapper = this->make();
  int runs = 0;
  auto fn = [&] { return ++runs; };
  wrapper->execute_once(EffectType::PNL_WRITE, "1", fn);
  wrapper->execute_once(EffectType::POSITION_UPDATE, "1", fn);
  wrapper->execute_once(EffectType::custom("FUNDING_TRANSFER"), "1", fn);
  wrapper->execute_once(EffectType::PNL_WRITE, "2", fn);
  EXPECT_EQ(runs, 4);
}

TYPED_TEST(WrapperTest, ExceptionReleasesTheClaimAndIsRethrown) {
  auto wrapper = this->make();
  std::uint64_t first_token = 0;
  EXPECT_THROW(wrapper->execute_once(EffectType::PNL_WRITE, "p1",
                                     [&](const EffectContext& ctx) -> std::uint64_t {
                                       first_token = ctx.fencing_token;
                                       throw std::runtime_error("exchange down");
                                     }),
               std::runtime_error);
  auto retry = wrapper->execute_once(EffectType::PNL_WRITE, "p1", [](const EffectContext& ctx) {
    EXPECT_TRUE(ctx.recovering) << "the failed run may have reached the exchange";
    return ctx.fencing_token;
  });
  EXPECT_TRUE(retry.executed);
  EXPECT_TRUE(retry.recovered);
  EXPECT_EQ(retry.result, first_token + 1) << "the token grows past the released claim";
  EXPECT_EQ(wrapper->stats().effect_errors, 1u);
}

TYPED_TEST(WrapperTest, RecordedFailuresAreReplayedWhenOptedIn) {
  WrapperOptions options = this->options();
  options.per_type["LEDGER_WRITE"] = EffectPolicy{.record_failures = true};
  auto wrapper = this->make(options);
  int runs = 0;
  auto failing = [&]() -> int {
    ++runs;
    throw std::runtime_error("insufficient funds");
  };
  EXPECT_THROW(wrapper->execute_once(EffectType::LEDGER_WRITE, "l1", failing), std::runtime_error);
  try {
    wrapper->execute_once(EffectType::LEDGER_WRITE, "l1", failing);
    FAIL() << "no exception";
  } catch (const EffectFailed& error) {
    EXPECT_EQ(error.recorded_error(), "insufficient funds");
    EXPECT_EQ(error.key(), "effect:LEDGER_WRITE:l1");
  }
  EXPECT_EQ(runs, 1);
  // Other types keep the default (release).
  EXPECT_THROW(wrapper->execute_once(EffectType::PNL_WRITE, "l1", failing), std::runtime_error);
  EXPECT_THROW(wrapper->execute_once(EffectType::PNL_WRITE, "l1", failing), std::runtime_error);
  EXPECT_EQ(runs, 3);
}

TYPED_TEST(WrapperTest, InProgressThrowsWithRetryAfterByDefault) {
  auto wrapper = this->make();
  this->store->claim("effect:ORDER_PLACEMENT:o1", "", TypeParam::lease(), 60s);
  int runs = 0;
  try {
    wrapper->execute_once(EffectType::ORDER_PLACEMENT, "o1", [&] { return ++runs; });
    FAIL() << "no exception";
  } catch (const AlreadyInProgress& error) {
    EXPECT_GT(error.retry_after(), 0ms);
    EXPECT_LE(error.retry_after(), TypeParam::lease());
    EXPECT_TRUE(error.retryable());
  }
  EXPECT_EQ(runs, 0);
}

TYPED_TEST(WrapperTest, WaitPolicyRecoversAfterTheLeaseEnds) {
  auto wrapper = this->make();
  const Claim other = this->store->claim("effect:ORDER_PLACEMENT:o1", "", TypeParam::lease(), 60s);
  auto outcome = wrapper->execute_once(
      EffectType::ORDER_PLACEMENT, "o1",
      [](const EffectContext& ctx) {
        EXPECT_TRUE(ctx.recovering);
        return ctx.fencing_token;
      },
      CallOptions{.in_progress = InProgressPolicy::kWait, .wait_timeout = 5s});
  EXPECT_TRUE(outcome.executed);
  EXPECT_TRUE(outcome.recovered);
  EXPECT_EQ(outcome.result, other.token + 1);
  EXPECT_EQ(wrapper->stats().recovered, 1u);
}

TYPED_TEST(WrapperTest, WaitPolicyGivesUpAtItsDeadline) {
  auto wrapper = this->make();
  this->store->claim("effect:ORDER_PLACEMENT:o1", "", 60s, 120s);
  EXPECT_THROW(wrapper->execute_once(
                   EffectType::ORDER_PLACEMENT, "o1", [] { return 1; },
                   CallOptions{.in_progress = InProgressPolicy::kWait, .wait_timeout = 200ms}),
               AlreadyInProgress);
}

TYPED_TEST(WrapperTest, WaitPolicyReturnsTheOtherWorkersResult) {
  auto wrapper = this->make();
  const Claim other = this->store->claim("effect:ORDER_PLACEMENT:o1", "", 60s, 120s);
  this->store->commit("effect:ORDER_PLACEMENT:o1", other.holder(), "7", "", 120s);
  auto outcome = wrapper->execute_once(
      EffectType::ORDER_PLACEMENT, "o1", [] { return 1; },
      CallOptions{.in_progress = InProgressPolicy::kWait});
  EXPECT_FALSE(outcome.executed);
  EXPECT_EQ(outcome.result, 7);
}

TYPED_TEST(WrapperTest, DifferentFingerprintIsAConflict) {
  auto wrapper = this->make();
  wrapper->execute_once(
      EffectType::ORDER_PLACEMENT, "o1", [] { return 1; }, CallOptions{.fingerprint = "qty=1"});
  try {
    wrapper->execute_once(
        EffectType::ORDER_PLACEMENT, "o1", [] { return 2; }, CallOptions{.fingerprint = "qty=2"});
    FAIL() << "no exception";
  } catch (const Conflict& error) {
    EXPECT_EQ(error.key(), "effect:ORDER_PLACEMENT:o1");
    EXPECT_FALSE(error.retryable());
  }
  EXPECT_EQ(wrapper->stats().conflicts, 1u);
}

TYPED_TEST(WrapperTest, StoreDownAtClaimFailsClosedAndDoesNotRun) {
  auto wrapper = this->make();
  this->store->fail_claims = 1;
  int runs = 0;
  EXPECT_THROW(wrapper->execute_once(EffectType::ORDER_PLACEMENT, "o1", [&] { return ++runs; }),
               StoreUnavailable);
  EXPECT_EQ(runs, 0);
  EXPECT_EQ(wrapper->execute_once(EffectType::ORDER_PLACEMENT, "o1", [&] { return ++runs; }).result,
            1);
}

TYPED_TEST(WrapperTest, FailOpenTypesRunUnprotectedAndAreCounted) {
  WrapperOptions options = this->options();
  options.per_type["PNL_WRITE"] = EffectPolicy{.fail_open = true};
  auto wrapper = this->make(options);
  this->store->fail_claims = -1;
  auto outcome = wrapper->execute_once(EffectType::PNL_WRITE, "p1", [] { return 5; });
  EXPECT_TRUE(outcome.executed);
  EXPECT_TRUE(outcome.unprotected);
  EXPECT_EQ(wrapper->stats().fail_open, 1u);
  EXPECT_THROW(wrapper->execute_once(EffectType::ORDER_PLACEMENT, "p1", [] { return 5; }),
               StoreUnavailable);
  this->store->fail_claims = 0;
}

TYPED_TEST(WrapperTest, CommitFailureJournalsTheResultAndCommitsItLater) {
  auto wrapper = this->make();
  this->store->fail_commits = -1;
  int runs = 0;
  auto outcome =
      wrapper->execute_once(EffectType::LEDGER_WRITE, "l1", [&] { return ++runs * 100; });
  EXPECT_TRUE(outcome.executed);
  EXPECT_TRUE(outcome.commit_pending);
  EXPECT_EQ(outcome.result, 100);
  EXPECT_EQ(wrapper->journal_pending(), 1u);
  EXPECT_EQ(this->store->commits.load(), 3) << "commit_attempts retries first";
  this->store->fail_commits = 0;
  // The next call commits the journal first, then finds the effect completed.
  auto again = wrapper->execute_once(EffectType::LEDGER_WRITE, "l1", [&] { return ++runs * 100; });
  EXPECT_FALSE(again.executed);
  EXPECT_EQ(again.result, 100);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(wrapper->journal_pending(), 0u);
  EXPECT_EQ(wrapper->stats().journal_committed, 1u);
}

TYPED_TEST(WrapperTest, JournalOfADeadWrapperIsAdoptedAndCommittedAtStartUp) {
  WrapperOptions options = this->options();
  int runs = 0;
  {
    auto first = this->make(options);
    this->store->fail_commits = -1;
    EXPECT_TRUE(
        first->execute_once(EffectType::LEDGER_WRITE, "l1", [&] { return ++runs; }).commit_pending);
    // Destroyed with the commit still pending: its file stays for adoption.
  }
  this->store->fail_commits = 0;
  auto second = this->make(options);
  EXPECT_EQ(second->journal_pending(), 0u);
  EXPECT_EQ(second->stats().journal_committed, 1u);
  EXPECT_EQ(this->store->inspect("effect:LEDGER_WRITE:l1")->state, "completed");
  EXPECT_FALSE(
      second->execute_once(EffectType::LEDGER_WRITE, "l1", [&] { return ++runs; }).executed);
  EXPECT_EQ(runs, 1);
}

TYPED_TEST(WrapperTest, LostLeaseThrowsLeaseLostCarryingTheResult) {
  WrapperOptions options = this->options();
  options.renew_leases = false;
  auto wrapper = this->make(options);
  std::uint64_t token = 0;
  try {
    wrapper->execute_once(EffectType::POSITION_UPDATE, "pos-1", [&](const EffectContext& ctx) {
      token = ctx.fencing_token;
      this->harness.advance(TypeParam::lease());  // this worker stalls past its lease...
      this->store->claim("effect:POSITION_UPDATE:pos-1", "", TypeParam::lease(),
                         60s);  // ...and another recovers
      return std::string("my result");
    });
    FAIL() << "no exception";
  } catch (const LeaseLost& error) {
    ASSERT_NE(error.result<std::string>(), nullptr);
    EXPECT_EQ(*error.result<std::string>(), "my result");
    EXPECT_EQ(error.result<int>(), nullptr);
    EXPECT_EQ(error.token(), token);
  }
  EXPECT_EQ(wrapper->stats().lease_lost, 1u);
}

TYPED_TEST(WrapperTest, ResultCacheAnswersDuplicatesWithoutTheStore) {
  WrapperOptions options = this->options();
  options.result_cache_size = 2;
  auto wrapper = this->make(options);
  wrapper->execute_once(EffectType::ORDER_PLACEMENT, "a", [] { return 1; });
  const int claims = this->store->claims.load();
  auto hit = wrapper->execute_once(EffectType::ORDER_PLACEMENT, "a", [] { return 2; });
  EXPECT_TRUE(hit.from_cache);
  EXPECT_EQ(hit.result, 1);
  EXPECT_EQ(this->store->claims.load(), claims);
  // Bounded: two more keys push "a" out.
  wrapper->execute_once(EffectType::ORDER_PLACEMENT, "b", [] { return 1; });
  wrapper->execute_once(EffectType::ORDER_PLACEMENT, "c", [] { return 1; });
  EXPECT_FALSE(
      wrapper->execute_once(EffectType::ORDER_PLACEMENT, "a", [] { return 2; }).from_cache);
  EXPECT_EQ(wrapper->stats().cache_hits, 1u);
}

TYPED_TEST(WrapperTest, PerTypeAndPerCallTtl) {
  WrapperOptions options = this->options();
  options.per_type["PNL_WRITE"] = EffectPolicy{.ttl = 2h};
  auto wrapper = this->make(options);
  wrapper->execute_once(EffectType::ORDER_PLACEMENT, "x", [] { return 1; });
  wrapper->execute_once(EffectType::PNL_WRITE, "x", [] { return 1; });
  wrapper->execute_once(
      EffectType::LEDGER_WRITE, "x", [] { return 1; }, CallOptions{.ttl = 10min});
  EXPECT_GT(this->store->inspect("effect:ORDER_PLACEMENT:x")->ttl_remaining, 71h);
  EXPECT_GT(this->store->inspect("effect:PNL_WRITE:x")->ttl_remaining, 119min);
  EXPECT_LE(this->store->inspect("effect:PNL_WRITE:x")->ttl_remaining, 2h);
  EXPECT_LE(this->store->inspect("effect:LEDGER_WRITE:x")->ttl_remaining, 10min);
}

TYPED_TEST(WrapperTest, BadArgumentsAreRefused) {
  auto wrapper = this->make();
  auto fn = [] { return 1; };
  EXPECT_THROW(wrapper->execute_once(EffectType::PNL_WRITE, "", fn), InvalidArgument);
  EXPECT_THROW(wrapper->execute_once(EffectType::PNL_WRITE, std::string(513, 'x'), fn),
               InvalidArgument);
  EXPECT_NO_THROW(wrapper->execute_once(EffectType::PNL_WRITE, std::string(512, 'x'), fn));
  EXPECT_THROW(wrapper->execute_once(EffectType::PNL_WRITE, "a\nb", fn), InvalidArgument);
  EXPECT_THROW(wrapper->execute_once(EffectType::PNL_WRITE, std::string("a\0b", 3), fn),
               InvalidArgument);
  EXPECT_THROW(wrapper->execute_once(EffectType::PNL_WRITE, "ok", fn, CallOptions{.ttl = 1ms}),
               InvalidArgument);
  EXPECT_THROW(EffectType("bad:type"), InvalidArgument);
  EXPECT_THROW(EffectType(""), InvalidArgument);
  WrapperOptions bad = this->options();
  bad.ttl = bad.lease;
  EXPECT_THROW(this->make(bad), InvalidArgument);
  EXPECT_THROW(SideEffectWrapper(nullptr), InvalidArgument);
}

// An overlong duration overflows the deadline arithmetic (now + ttl) and the
// store's PX argument; each is refused at construction, naming the field.
TYPED_TEST(WrapperTest, OverlongDurationsAreRefusedNamingTheField) {
  using std::chrono::milliseconds;
  auto refused = [&](const std::function<void(WrapperOptions&)>& change, const std::string& field) {
    WrapperOptions options = this->options();
    change(options);
    try {
      this->make(options);
    } catch (const InvalidArgument& error) {
      EXPECT_NE(std::string(error.what()).find(field), std::string::npos) << error.what();
      return;
    }
    ADD_FAILURE() << field << " was accepted";
  };
  refused([](WrapperOptions& o) { o.ttl = milliseconds::max(); }, "ttl");
  refused(
      [](WrapperOptions& o) {
        o.ttl = std::chrono::hours(72);
        o.lease = std::chrono::hours(48);
      },
      "lease");
  refused([](WrapperOptions& o) { o.wait_timeout = milliseconds::max(); }, "wait_timeout");
  refused([](WrapperOptions& o) { o.wait_poll_max = milliseconds::max(); }, "wait_poll_max");
  refused([](WrapperOptions& o) { o.commit_retry_delay = milliseconds::max(); },
          "commit_retry_delay");
  refused([](WrapperOptions& o) { o.journal_scan_interval = milliseconds::max(); },
          "journal_scan_interval");
  refused([](WrapperOptions& o) { o.per_type["PNL_WRITE"].ttl = milliseconds::max(); },
          "per_type[PNL_WRITE].ttl");
  auto wrapper = this->make();
  EXPECT_THROW(
      wrapper->execute_once(
          EffectType::PNL_WRITE, "ok", [] { return 1; }, CallOptions{.ttl = milliseconds::max()}),
      InvalidArgument);
}

// Lease renewal runs on real time, so this one is Redis only.
TEST(LeaseRenewalTest, LongEffectsKeepTheirLeaseAlive) {
  RedisHarness harness;
  auto store = std::make_shared<FailingEffectStore>(harness.store());
  WrapperOptions options = harness.wrapper_options();
  options.lease = RedisHarness::lease();
  SideEffectWrapper wrapper(store, options);
  const auto outcome = wrapper.execute_once(EffectType::LEDGER_WRITE, "slow", [&] {
    // Three leases long; another worker must see it in progress throughout.
    for (int i = 0; i < 6; ++i) {
      std::this_thread::sleep_for(RedisHarness::lease() / 2);
      const Claim other = store->claim("effect:LEDGER_WRITE:slow", "", RedisHarness::lease(), 60s);
      EXPECT_EQ(other.status, ClaimStatus::kInProgress) << "after " << (i + 1) << " half leases";
    }
    return 1;
  });
  EXPECT_TRUE(outcome.executed);
  EXPECT_FALSE(outcome.recovered);
  EXPECT_GE(store->renews.load(), 5);
}

}  // namespace
}  // namespace prodsafe::idempotency
