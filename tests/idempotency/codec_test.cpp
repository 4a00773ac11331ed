// Codec<T>::decode of stored bytes that are not a T. Found by
// fuzz/codec_fuzz.cpp: a JSON number that is not an integer, or does not fit,
// read back as an integer type was converted anyway (undefined behaviour for
// 1.5e300; 1.5 silently became 1, 4294967296 became 0 as an int).
#include "prodsafe/idempotency/codec.hpp"

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::idempotency {
namespace {

TEST(CodecTest, AFractionalOrHugeNumberIsNotDecodedAsAnInteger) {
  EXPECT_THROW((void)Codec<long long>::decode("1.5e300"), DecodeError);
  EXPECT_THROW((void)Codec<long long>::decode("1.5"), DecodeError);
  EXPECT_THROW((void)Codec<int>::decode("4294967296"), DecodeError);
  EXPECT_THROW((void)Codec<unsigned>::decode("-1"), DecodeError);
  EXPECT_THROW((void)Codec<long long>::decode("18446744073709551615"), DecodeError);
  using Fills = std::map<std::string, long long>;
  EXPECT_THROW((void)Codec<Fills>::decode(R"({"a":1,"b":1e300})"), DecodeError);
  EXPECT_THROW((void)Codec<std::vector<int>>::decode("[1,2.5]"), DecodeError);
}

TEST(CodecTest, IntegersAndFloatsThatFitStillDecode) {
  EXPECT_EQ(Codec<long long>::decode("-9223372036854775808"), INT64_MIN);
  EXPECT_EQ(Codec<unsigned long long>::decode("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(Codec<int>::decode("2147483647"), 2147483647);
  EXPECT_EQ(Codec<double>::decode("1.5e300"), 1.5e300);
  EXPECT_EQ(Codec<double>::decode("3"), 3.0);
  EXPECT_EQ((Codec<std::map<std::string, long long>>::decode(R"({"a":1})")),
            (std::map<std::string, long long>{{"a", 1}}));
  EXPECT_EQ(Codec<std::vector<int>>::decode("[1,2]"), (std::vector<int>{1, 2}));
  EXPECT_EQ(Codec<nlohmann::json>::decode("[1.5,2]"), nlohmann::json::parse("[1.5,2]"));
}

}  // namespace
}  // namespace prodsafe::idempotency
