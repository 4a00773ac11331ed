// One suite, every EffectStore: the claim / commit / release / renew protocol.
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

TYPED_TEST(StoreConformanceTest, FirstClaimGetsTokenOneAndALiveLeaseBlocksOthers) {
  const Claim first = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  EXPECT_EQ(first.status, ClaimStatus::kClaimed);
  EXPECT_EQ(first.token, 1u);
  const Claim second = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  EXPECT_EQ(second.status, ClaimStatus::kInProgress);
  EXPECT_EQ(second.token, 1u);
  EXPECT_GT(second.retry_after, 0ms);
  EXPECT_LE(second.retry_after, this->lease());
}

TYPED_TEST(StoreConformanceTest, CommitThenClaimReturnsTheResult) {
  const Claim claim = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  EXPECT_EQ(this->store().commit("effect:T:1", claim.token, "result-bytes", "fp", kTtl),
            FinishStatus::kDone);
  const Claim again = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  EXPECT_EQ(again.status, ClaimStatus::kCompleted);
  EXPECT_EQ(again.payload, "result-bytes");
  EXPECT_EQ(again.token, 1u);
  // A repeated commit with the same token (a lost reply, a journal replay) is fine.
  EXPECT_EQ(this->store().commit("effect:T:1", claim.token, "result-bytes", "fp", kTtl),
            FinishStatus::kDone);
}

TYPED_TEST(StoreConformanceTest, CommitWithAStaleTokenIsRefused) {
  const Claim claim = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  EXPECT_EQ(this->store().commit("effect:T:1", claim.token + 1, "x", "", kTtl),
            FinishStatus::kLeaseLost);
  EXPECT_EQ(this->store().inspect("effect:T:1")->state, "in_progress");
}

TYPED_TEST(StoreConformanceTest, ExpiredLeaseIsRecoveredWithAHigherToken) {
  const Claim first = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  this->harness.advance(this->lease());
  const Claim recovered = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  EXPECT_EQ(recovered.status, ClaimStatus::kRecovered);
  EXPECT_EQ(recovered.token, first.token + 1);
  // The first holder's late commit is refused; the recoverer's lands.
  EXPECT_EQ(this->store().commit("effect:T:1", first.token, "late", "fp", kTtl),
            FinishStatus::kLeaseLost);
  EXPECT_EQ(this->store().commit("effect:T:1", recovered.token, "recovered", "fp", kTtl),
            FinishStatus::kDone);
  EXPECT_EQ(this->store().inspect("effect:T:1")->result, "recovered");
}

TYPED_TEST(StoreConformanceTest, ReleaseLetsTheNextClaimRunWithAGrowingToken) {
  const Claim first = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  EXPECT_FALSE(this->store().release("effect:T:1", first.token + 5));
  EXPECT_TRUE(this->store().release("effect:T:1", first.token));
  EXPECT_FALSE(this->store().release("effect:T:1", first.token));  // only once
  const Claim next = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  EXPECT_EQ(next.status, ClaimStatus::kClaimed);
  EXPECT_EQ(next.token, 2u);
  EXPECT_EQ(this->store().commit("effect:T:1", first.token, "x", "", kTtl),
            FinishStatus::kLeaseLost);
}

TYPED_TEST(StoreConformanceTest, RecordedFailureIsReplayed) {
  const Claim claim = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  EXPECT_EQ(this->store().record_failure("effect:T:1", claim.token, "exchange said no", "", kTtl),
            FinishStatus::kDone);
  const Claim again = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  EXPECT_EQ(again.status, ClaimStatus::kFailed);
  EXPECT_EQ(again.payload, "exchange said no");
  EXPECT_TRUE(this->store().clear("effect:T:1"));
  EXPECT_EQ(this->store().claim("effect:T:1", "", this->lease(), kTtl).status,
            ClaimStatus::kClaimed);
}

TYPED_TEST(StoreConformanceTest, DifferentFingerprintConflictsEmptyIsNotCompared) {
  this->store().claim("effect:T:1", "fp-a", this->lease(), kTtl);
  const Claim conflict = this->store().claim("effect:T:1", "fp-b", this->lease(), kTtl);
  EXPECT_EQ(conflict.status, ClaimStatus::kConflict);
  EXPECT_EQ(conflict.payload, "fp-a");
  EXPECT_EQ(this->store().claim("effect:T:1", "", this->lease(), kTtl).status,
            ClaimStatus::kInProgress);
}

TYPED_TEST(StoreConformanceTest, RenewKeepsALiveEffectFromBeingRecovered) {
  const Claim claim = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  this->harness.advance(this->lease() / 2);
  EXPECT_TRUE(this->store().renew("effect:T:1", claim.token, this->lease()));
  this->harness.advance(this->lease() / 2 + 50ms);  // past the original lease
  EXPECT_EQ(this->store().claim("effect:T:1", "", this->lease(), kTtl).status,
            ClaimStatus::kInProgress);
  EXPECT_FALSE(this->store().renew("effect:T:1", claim.token + 1, this->lease()));
}

TYPED_TEST(StoreConformanceTest, CommitOnAVanishedRecordWritesItAnew) {
  const Claim claim = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  EXPECT_TRUE(this->store().clear("effect:T:1"));  // as if evicted
  EXPECT_EQ(this->store().commit("effect:T:1", claim.token, "r", "fp", kTtl), FinishStatus::kDone);
  const auto record = this->store().inspect("effect:T:1");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, "completed");
  EXPECT_EQ(record->result, "r");
  EXPECT_EQ(record->fingerprint, "fp");
}

TYPED_TEST(StoreConformanceTest, InspectShowsTheRecord) {
  EXPECT_EQ(this->store().inspect("effect:T:none"), std::nullopt);
  const Claim claim = this->store().claim("effect:T:1", "fp", this->lease(), kTtl);
  auto record = this->store().inspect("effect:T:1");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, "in_progress");
  EXPECT_EQ(record->token, claim.token);
  EXPECT_EQ(record->fingerprint, "fp");
  EXPECT_GT(record->lease_remaining, 0ms);
  EXPECT_GT(record->ttl_remaining, kTtl - 5s);
}

TYPED_TEST(StoreConformanceTest, RecordsExpireAfterTheirTtl) {
  const Claim claim = this->store().claim("effect:T:1", "", this->lease(), 600ms);
  this->store().commit("effect:T:1", claim.token, "r", "", 600ms);
  this->harness.advance(600ms);
  EXPECT_EQ(this->store().inspect("effect:T:1"), std::nullopt);
  EXPECT_EQ(this->store().claim("effect:T:1", "", this->lease(), kTtl).status,
            ClaimStatus::kClaimed);
}

TYPED_TEST(StoreConformanceTest, BinaryResultsSurvive) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  const Claim claim = this->store().claim("effect:T:1", "", this->lease(), kTtl);
  this->store().commit("effect:T:1", claim.token, bytes, "", kTtl);
  EXPECT_EQ(this->store().claim("effect:T:1", "", this->lease(), kTtl).payload, bytes);
}

}  // namespace
}  // namespace prodsafe::idempotency
