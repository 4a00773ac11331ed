// One suite, every EffectStore: the claim / finish / release / renew protocol.
#include <gtest/gtest.h>

#include "store_harness.hpp"

namespace prodsafe::idempotency {
namespace {

using namespace std::chrono_literals;
using prodsafe::testing::MemoryHarness;
using prodsafe::testing::RedisHarness;

constexpr auto kTtl = 60s;

template <class Harness>
class StoreConformanceTest : public ::testing::Test {
 protected:
  Harness harness;
  EffectStore& store() { return *store_; }
  std::chrono::milliseconds lease() const { return Harness::lease(); }

 private:
  std::shared_ptr<EffectStore> store_ = harness.store();
};

TYPED_TEST_SUITE(StoreConformanceTest, prodsafe::testing::Harnesses,
                 prodsafe::testing::HarnessNames);

TYPED_TEST(StoreConformanceTest, FirstClaimGetsATokenAndAHolderAndALiveLeaseBlocksOthers) {
  const Claim first = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  EXPECT_EQ(first.status, ClaimStatus::kClaimed);
  EXPECT_GE(first.token, 1u);
  EXPECT_FALSE(first.holder_id.empty());
  const Claim second = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  EXPECT_EQ(second.status, ClaimStatus::kInProgress);
  EXPECT_EQ(second.token, first.token);
  EXPECT_TRUE(second.holder_id.empty()) << "only the claimer learns the holder id";
  EXPECT_GT(second.retry_after, 0ms);
  EXPECT_LE(second.retry_after, this->lease());
}

TYPED_TEST(StoreConformanceTest, CommitThenClaimReturnsTheResult) {
  const Claim claim = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  EXPECT_EQ(this->store().commit("effect:T:1", claim.holder(), "result-bytes", "fp", kTtl),
            FinishStatus::kDone);
  const Claim again = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  EXPECT_EQ(again.status, ClaimStatus::kCompleted);
  EXPECT_EQ(again.payload, "result-bytes");
  EXPECT_EQ(again.token, claim.token);
  // A repeated commit by the same holder (a lost reply, a journal replay) is fine.
  EXPECT_EQ(this->store().commit("effect:T:1", claim.holder(), "result-bytes", "fp", kTtl),
            FinishStatus::kDone);
}

TYPED_TEST(StoreConformanceTest, CommitWithAStaleTokenOrAnotherHolderIsRefused) {
  const Claim claim = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  EXPECT_EQ(this->store().commit("effect:T:1", {claim.token + 1, claim.holder_id}, "x", "", kTtl),
            FinishStatus::kLeaseLost);
  EXPECT_EQ(this->store().commit("effect:T:1", {claim.token, "someone-else"}, "x", "", kTtl),
            FinishStatus::kLeaseLost);
  EXPECT_FALSE(
      this->store().renew("effect:T:1", {claim.token, "someone-else"}, this->lease(), kTtl, ""));
  EXPECT_FALSE(this->store().release("effect:T:1", {claim.token, "someone-else"}));
  EXPECT_EQ(this->store().inspect("effect:T:1")->state, "in_progress");
}

TYPED_TEST(StoreConformanceTest, ExpiredLeaseIsRecoveredWithAHigherToken) {
  const Claim first = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  this->harness.advance(this->lease());
  const Claim recovered = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  EXPECT_EQ(recovered.status, ClaimStatus::kRecovered);
  EXPECT_EQ(recovered.token, first.token + 1);
  EXPECT_NE(recovered.holder_id, first.holder_id);
  // The first holder's late commit is refused; the recoverer's lands.
  EXPECT_EQ(this->store().commit("effect:T:1", first.holder(), "late", "fp", kTtl),
            FinishStatus::kLeaseLost);
  EXPECT_EQ(this->store().commit("effect:T:1", recovered.holder(), "recovered", "fp", kTtl),
            FinishStatus::kDone);
  EXPECT_EQ(this->store().inspect("effect:T:1")->result, "recovered");
}

// The released claim's effect threw, and a timeout talking to
// the exchange may have placed the order: the next holder must be told.
TYPED_TEST(StoreConformanceTest, AReleasedClaimIsTakenOverAsARecoveryWithAGrowingToken) {
  const Claim first = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  EXPECT_FALSE(this->store().release("effect:T:1", {first.token + 5, first.holder_id}));
  EXPECT_TRUE(this->store().release("effect:T:1", first.holder()));
  EXPECT_FALSE(this->store().release("effect:T:1", first.holder()));  // only once
  const Claim next = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  EXPECT_EQ(next.status, ClaimStatus::kRecovered);
  EXPECT_EQ(next.token, first.token + 1);
  EXPECT_EQ(this->store().commit("effect:T:1", first.holder(), "x", "", kTtl),
            FinishStatus::kLeaseLost);
}

TYPED_TEST(StoreConformanceTest, RecordedFailureIsReplayed) {
  const Claim claim = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  EXPECT_EQ(
      this->store().record_failure("effect:T:1", claim.holder(), "exchange said no", "", kTtl),
      FinishStatus::kDone);
  const Claim again = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  EXPECT_EQ(again.status, ClaimStatus::kFailed);
  EXPECT_EQ(again.payload, "exchange said no");
  EXPECT_TRUE(this->store().clear("effect:T:1"));
  EXPECT_EQ(this->store().claim("effect:T:1", "", this->lease(), kTtl).status,
            ClaimStatus::kClaimed);
}

// An effect that ran but whose result cannot be encoded is
// done: later claims are told so, and are never handed the effect to run.
TYPED_TEST(StoreConformanceTest, AResultThatCouldNotBeStoredIsDoneWithoutAResult) {
  const Claim claim = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  EXPECT_EQ(this->store().finish("effect:T:1", claim.holder(), FinalState::kUnavailable,
                                 "invalid UTF-8", "fp", kTtl),
            FinishStatus::kDone);
  const Claim again = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  EXPECT_EQ(again.status, ClaimStatus::kUnavailable);
  EXPECT_EQ(again.payload, "invalid UTF-8");
  EXPECT_EQ(again.token, claim.token);
  EXPECT_GT(again.ttl_remaining, kTtl - 10s);
  this->harness.advance(this->lease());
  EXPECT_EQ(this->store().claim("effect:T:1", "fp", this->lease(), kTtl).status,
            ClaimStatus::kUnavailable)
      << "unlike a lease, it never becomes recoverable";
  EXPECT_EQ(this->store().inspect("effect:T:1")->state, "unavailable");
}

TYPED_TEST(StoreConformanceTest, DifferentFingerprintConflictsEmptyIsNotCompared) {
  this->store().claim("effect:T:1", "fp-a", this->lease(), kTtl);
  const Claim conflict = this->store().claim("effect:T:1", "fp-b", this->lease(), kTtl);
  EXPECT_EQ(conflict.status, ClaimStatus::kConflict);
  EXPECT_EQ(conflict.payload, "fp-a");
  EXPECT_EQ(this->store().claim("effect:T:1", "", this->lease(), kTtl).status,
            ClaimStatus::kInProgress);
}

// The wrapper caches what the store holds, so the claim must
// say what that is, and how long the record lives.
TYPED_TEST(StoreConformanceTest, ACompletedClaimCarriesTheStoredFingerprintAndTheRecordsTtl) {
  const Claim claim = this->store().claim("effect:T:1", "fp-a", this->lease(), 5s);
  this->store().commit("effect:T:1", claim.holder(), "r", "fp-a", 5s);
  const Claim again = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  EXPECT_EQ(again.status, ClaimStatus::kCompleted);
  EXPECT_EQ(again.fingerprint, "fp-a");
  EXPECT_GT(again.ttl_remaining, 3s);
  EXPECT_LE(again.ttl_remaining, 5s) << "the record's own expiry, not the caller's ttl";
}

TYPED_TEST(StoreConformanceTest, RenewKeepsALiveEffectFromBeingRecovered) {
  const Claim claim = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  this->harness.advance(this->lease() / 2);
  EXPECT_TRUE(this->store().renew("effect:T:1", claim.holder(), this->lease(), kTtl, ""));
  this->harness.advance(this->lease() / 2 + 50ms);  // past the original lease
  EXPECT_EQ(this->store().claim("effect:T:1", "", this->lease(), kTtl).status,
            ClaimStatus::kInProgress);
  EXPECT_FALSE(this->store().renew("effect:T:1", {claim.token + 1, claim.holder_id}, this->lease(),
                                   kTtl, ""));
}

// An effect that outlives its record's TTL (a per-call ttl
// of minutes, a slow exchange) must not lose its record mid-run.
TYPED_TEST(StoreConformanceTest, RenewKeepsTheRecordAlivePastItsTtl) {
  const auto ttl = this->lease() * 2;
  const Claim claim = this->store().claim("effect:T:1", "fp", this->lease(), ttl);
  for (int i = 0; i < 4; ++i) {  // twice the ttl in all
    this->harness.advance(this->lease() / 2);
    ASSERT_TRUE(this->store().renew("effect:T:1", claim.holder(), this->lease(), ttl, "fp"));
  }
  const Claim other = this->store().claim("effect:T:1", "fp", this->lease(), ttl);
  EXPECT_EQ(other.status, ClaimStatus::kInProgress) << "a second claim ran beside a live holder";
  EXPECT_EQ(this->store().commit("effect:T:1", claim.holder(), "r", "fp", ttl),
            FinishStatus::kDone);
}

// A record evicted or deleted under a live claim comes back
// with the claim's renewal, so no second claim starts beside it.
TYPED_TEST(StoreConformanceTest, RenewWritesAVanishedRecordAnewForItsHolder) {
  const Claim claim = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  ASSERT_TRUE(this->store().clear("effect:T:1"));  // as if evicted
  EXPECT_TRUE(this->store().renew("effect:T:1", claim.holder(), this->lease(), kTtl, "fp"));
  const auto record = this->store().inspect("effect:T:1");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, "in_progress");
  EXPECT_EQ(record->token, claim.token);
  EXPECT_EQ(record->holder_id, claim.holder_id);
  EXPECT_EQ(record->fingerprint, "fp");
  EXPECT_EQ(this->store().claim("effect:T:1", "fp", this->lease(), kTtl).status,
            ClaimStatus::kInProgress);
  EXPECT_EQ(this->store().commit("effect:T:1", claim.holder(), "r", "fp", kTtl),
            FinishStatus::kDone);
}

// A record lost and claimed again must not take commits,
// renewals or releases from the claim of its earlier life, and its tokens
// must stay above that life's.
TYPED_TEST(StoreConformanceTest, AClaimOfAnEarlierLifeOfTheRecordIsRefused) {
  const Claim old_claim = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  ASSERT_TRUE(this->store().clear("effect:T:1"));  // evicted or deleted mid-run
  const Claim new_claim = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  ASSERT_EQ(new_claim.status, ClaimStatus::kClaimed);
  EXPECT_GT(new_claim.token, old_claim.token) << "fencing tokens must keep growing";
  EXPECT_FALSE(this->store().renew("effect:T:1", old_claim.holder(), this->lease(), kTtl, "fp"));
  EXPECT_FALSE(this->store().release("effect:T:1", old_claim.holder()));
  EXPECT_EQ(this->store().commit("effect:T:1", old_claim.holder(), "old", "fp", kTtl),
            FinishStatus::kLeaseLost);
  EXPECT_EQ(this->store().commit("effect:T:1", new_claim.holder(), "new", "fp", kTtl),
            FinishStatus::kDone);
  EXPECT_EQ(this->store().inspect("effect:T:1")->result, "new");
}

TYPED_TEST(StoreConformanceTest, TokensGrowAcrossRecordsThatExpired) {
  const Claim first = this->store().claim("effect:T:1", "", this->lease(), this->lease() * 2);
  this->store().commit("effect:T:1", first.holder(), "r", "", this->lease() * 2);
  this->harness.advance(this->lease() * 2);
  const Claim second = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  ASSERT_EQ(second.status, ClaimStatus::kClaimed);
  EXPECT_GT(second.token, first.token);
}

TYPED_TEST(StoreConformanceTest, CommitOnAVanishedRecordWritesItAnew) {
  const Claim claim = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  EXPECT_TRUE(this->store().clear("effect:T:1"));  // as if evicted
  EXPECT_EQ(this->store().commit("effect:T:1", claim.holder(), "r", "fp", kTtl),
            FinishStatus::kDone);
  const auto record = this->store().inspect("effect:T:1");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, "completed");
  EXPECT_EQ(record->result, "r");
  EXPECT_EQ(record->fingerprint, "fp");
  EXPECT_EQ(record->token, claim.token);
}

TYPED_TEST(StoreConformanceTest, InspectShowsTheRecord) {
  EXPECT_EQ(this->store().inspect("effect:T:none"), std::nullopt);
  const Claim claim = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  auto record = this->store().inspect("effect:T:1");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, "in_progress");
  EXPECT_EQ(record->token, claim.token);
  EXPECT_EQ(record->holder_id, claim.holder_id);
  EXPECT_EQ(record->fingerprint, "fp");
  EXPECT_GT(record->lease_remaining, 0ms);
  EXPECT_GT(record->ttl_remaining, kTtl - 5s);
}

TYPED_TEST(StoreConformanceTest, RecordsExpireAfterTheirTtl) {
  const Claim claim = this->store().claim("effect:T:1", "", this->lease(), 600ms);
  this->store().commit("effect:T:1", claim.holder(), "r", "", 600ms);
  this->harness.advance(600ms);
  EXPECT_EQ(this->store().inspect("effect:T:1"), std::nullopt);
  EXPECT_EQ(this->store().claim("effect:T:1", "", this->lease(), kTtl).status,
            ClaimStatus::kClaimed);
}

TYPED_TEST(StoreConformanceTest, BinaryResultsSurvive) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  const Claim claim = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  this->store().commit("effect:T:1", claim.holder(), bytes, "", kTtl);
  EXPECT_EQ(this->store().claim("effect:T:1", "", this->lease(), kTtl).payload, bytes);
}

TYPED_TEST(StoreConformanceTest, IdentityIsStableForTheStoreAndSaysNoSecret) {
  const std::string identity = this->store().identity();
  EXPECT_FALSE(identity.empty());
  EXPECT_EQ(this->store().identity(), identity);
  EXPECT_EQ(identity.find("secret"), std::string::npos);
}

}  // namespace
}  // namespace prodsafe::idempotency
