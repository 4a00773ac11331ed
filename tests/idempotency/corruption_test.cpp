// Garbage under an effect key is reported as DecodeError naming the key;
// nothing crashes and nothing is overwritten.
#include <gtest/gtest.h>

#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "store_harness.hpp"

namespace prodsafe::idempotency {
namespace {

using prodsafe::testing::RedisHarness;

class CorruptionTest : public ::testing::Test {
 protected:
  RedisHarness harness;
  SideEffectWrapper wrapper{harness.store(), harness.wrapper_options()};
  const std::string key = harness.client().key("effect:ORDER_PLACEMENT:o1");

  void expect_decode_error(const char* what) {
    int runs = 0;
    try {
      wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o1", [&] { return ++runs; });
      ADD_FAILURE() << what << ": no exception";
    } catch (const DecodeError& error) {
      EXPECT_NE(std::string(error.what()).find("effect:ORDER_PLACEMENT:o1"), std::string::npos)
          << what << ": " << error.what();
    }
    EXPECT_EQ(runs, 0) << what;
  }
};

TEST_F(CorruptionTest, KeyOfTheWrongType) {
  harness.client().set(key, "garbage");
  expect_decode_error("a string");
  EXPECT_EQ(harness.client().get(key), "garbage") << "the bad value must be left alone";
  harness.client().del(key);
  harness.client().command({"RPUSH", key, "x"});
  expect_decode_error("a list");
  EXPECT_THROW((void)wrapper.store().inspect("effect:ORDER_PLACEMENT:o1"), DecodeError);
}

TEST_F(CorruptionTest, HashWithGarbageFields) {
  harness.client().command({"HSET", key, "state", "completed", "token", "not-a-number"});
  expect_decode_error("a bad token");
  harness.client().command({"HSET", key, "state", "weird", "token", "3"});
  expect_decode_error("an unknown state");
  harness.client().command(
      {"HSET", key, "state", "in_progress", "token", "3", "lease_until", "soon"});
  expect_decode_error("a bad lease");
  harness.client().del(key);
  harness.client().command({"HSET", key, "unrelated", "1"});
  expect_decode_error("no state");
}

TEST_F(CorruptionTest, StoredResultThatIsNotTheExpectedType) {
  harness.client().command(
      {"HSET", key, "state", "completed", "token", "1", "result", "{not json"});
  expect_decode_error("a result that is not JSON");
  harness.client().command({"HSET", key, "result", "\"a string\""});
  expect_decode_error("a result of another type");
}

}  // namespace
}  // namespace prodsafe::idempotency
