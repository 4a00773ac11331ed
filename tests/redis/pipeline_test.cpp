#include "prodsafe/redis/pipeline.hpp"

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::redis {
namespace {

TEST(PipelineTest, EncodesCommandsAsRespArrays) {
  Pipeline pipeline;
  pipeline.add({"SET", "k", "v"}).add(std::vector<std::string>{"GET", "k"});
  EXPECT_EQ(pipeline.size(), 2u);
  EXPECT_EQ(pipeline.encoded(),
            "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
}

TEST(PipelineTest, BinarySafeArguments) {
  Pipeline pipeline;
  const std::string binary("a\0\r\nb", 5);
  pipeline.add({"SET", "k", binary});
  static constexpr char kExpected[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\0\r\nb\r\n";
  EXPECT_EQ(pipeline.encoded(), std::string(kExpected, sizeof kExpected - 1));
}

TEST(PipelineTest, EmptyCommandIsRefused) {
  Pipeline pipeline;
  EXPECT_THROW(pipeline.add(std::vector<std::string>{}), InvalidArgument);
  EXPECT_TRUE(pipeline.empty());
}

TEST(PipelineTest, ClearEmptiesIt) {
  Pipeline pipeline;
  pipeline.add({"PING"});
  pipeline.clear();
  EXPECT_TRUE(pipeline.empty());
  EXPECT_TRUE(pipeline.encoded().empty());
}

}  // namespace
}  // namespace prodsafe::redis
