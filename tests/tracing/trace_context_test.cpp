#include "prodsafe/tracing/trace_context.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>

namespace prodsafe::tracing {
namespace {

constexpr std::string_view kExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceparentTest, ParsesTheSpecsExampleAndFormatsItBack) {
  const auto context = parse_traceparent(kExample);
  ASSERT_TRUE(context.has_value());
  EXPECT_EQ(to_hex(context->trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(to_hex(context->span_id), "00f067aa0ba902b7");
  EXPECT_TRUE(context->sampled);
  EXPECT_EQ(format_traceparent(*context), kExample);
}

TEST(TraceparentTest, TheSampledFlagIsBitZero) {
  auto context = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(context.has_value());
  EXPECT_FALSE(context->sampled);
  EXPECT_EQ(format_traceparent(*context),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  context = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
  ASSERT_TRUE(context.has_value());
  EXPECT_TRUE(context->sampled);
}

TEST(TraceparentTest, RefusesWhatTheSpecRefuses) {
  for (std::string_view bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       // no flags
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // uppercase
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero span id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // 00 with more
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    // not hex
           "0-04bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // misplaced dash
           "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",   // later version, no dash
       }) {
    EXPECT_FALSE(parse_traceparent(bad).has_value()) << bad;
  }
}

TEST(TraceparentTest, ALaterVersionIsReadAndItsExtraFieldsIgnored) {
  const auto context =
      parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes");
  ASSERT_TRUE(context.has_value());
  EXPECT_EQ(to_hex(context->span_id), "00f067aa0ba902b7");
}

TEST(TraceIdsTest, AreNonZeroAndDoNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    ASSERT_TRUE(seen.insert(to_hex(new_trace_id())).second);
    ASSERT_TRUE(seen.insert(to_hex(new_span_id())).second);
  }
}

TEST(TraceIdsTest, AForkedChildDoesNotRepeatItsParentsIds) {
  static_cast<void>(new_span_id());  // seed this thread's generator in the parent
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string id = to_hex(new_trace_id());
    const ssize_t written = ::write(pipe_fds[1], id.data(), id.size());
    ::_exit(written == static_cast<ssize_t>(id.size()) ? 0 : 1);
  }
  const std::string parent = to_hex(new_trace_id());
  std::string from_child(32, '\0');
  ASSERT_EQ(::read(pipe_fds[0], from_child.data(), from_child.size()), 32);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  EXPECT_NE(from_child, parent);
}

}  // namespace
}  // namespace prodsafe::tracing
