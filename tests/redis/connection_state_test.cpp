// classify_command() and the connection state a Pipeline tracks as commands
// are added; no server needed.
#include "prodsafe/redis/connection_state.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "prodsafe/redis/pipeline.hpp"

namespace prodsafe::redis {
namespace {

CommandState classify(std::initializer_list<std::string_view> args) {
  return classify_command(std::span<const std::string_view>(args.begin(), args.size()));
}

TEST(ClassifyCommandTest, EveryListedCommandIsClassifiedInAnyCase) {
  struct Case {
    std::vector<std::string_view> args;
    StateChange change;
    std::string_view name;
  };
  const std::vector<Case> cases = {
      {{"MULTI"}, StateChange::kMulti, "MULTI"},
      {{"multi"}, StateChange::kMulti, "MULTI"},
      {{"Exec"}, StateChange::kEndMulti, "EXEC"},
      {{"discard"}, StateChange::kEndMulti, "DISCARD"},
      {{"WATCH", "k"}, StateChange::kWatch, "WATCH"},
      {{"unwatch"}, StateChange::kUnwatch, "UNWATCH"},
      {{"select", "1"}, StateChange::kLasting, "SELECT"},
      {{"SUBSCRIBE", "c"}, StateChange::kLasting, "SUBSCRIBE"},
      {{"PSubscribe", "c*"}, StateChange::kLasting, "PSUBSCRIBE"},
      {{"ssubscribe", "c"}, StateChange::kLasting, "SSUBSCRIBE"},
      {{"UNSUBSCRIBE"}, StateChange::kLasting, "UNSUBSCRIBE"},
      {{"punsubscribe"}, StateChange::kLasting, "PUNSUBSCRIBE"},
      {{"SUNSUBSCRIBE"}, StateChange::kLasting, "SUNSUBSCRIBE"},
      {{"client", "reply", "off"}, StateChange::kLasting, "CLIENT REPLY"},
      {{"CLIENT", "Tracking", "on"}, StateChange::kLasting, "CLIENT TRACKING"},
      {{"CLIENT", "CACHING", "yes"}, StateChange::kLasting, "CLIENT CACHING"},
      {{"CLIENT", "no-touch", "on"}, StateChange::kLasting, "CLIENT NO-TOUCH"},
      {{"RESET"}, StateChange::kLasting, "RESET"},
      {{"hello", "3"}, StateChange::kLasting, "HELLO"},
      {{"AUTH", "pw"}, StateChange::kLasting, "AUTH"},
      {{"monitor"}, StateChange::kLasting, "MONITOR"},
      {{"READONLY"}, StateChange::kLasting, "READONLY"},
      {{"readwrite"}, StateChange::kLasting, "READWRITE"},
      {{"ASKING"}, StateChange::kLasting, "ASKING"},
      {{"quit"}, StateChange::kLasting, "QUIT"},
      {{"SYNC"}, StateChange::kLasting, "SYNC"},
      {{"psync", "?", "-1"}, StateChange::kLasting, "PSYNC"},
      {{"REPLCONF", "ack", "0"}, StateChange::kLasting, "REPLCONF"},
  };
  for (const Case& c : cases) {
    const CommandState state = classify_command(c.args);
    EXPECT_EQ(state.change, c.change) << c.args.front();
    EXPECT_EQ(state.name, c.name) << c.args.front();
    if (c.change != StateChange::kUnwatch) {
      EXPECT_FALSE(state.advice.empty()) << c.args.front();
    }
  }
}

TEST(ClassifyCommandTest, OtherCommandsLeaveTheConnectionAlone) {
  for (const auto& args : std::vector<std::vector<std::string_view>>{{"GET", "k"},
                                                                     {"SET", "k", "v"},
                                                                     {"EVALSHA", "x", "0"},
                                                                     {"INCR", "n"},
                                                                     {"SELECTX"},
                                                                     {"MULTIX"},
                                                                     {"EXE"},
                                                                     {"SUBSCRIBER"},
                                                                     {"CLIENT"},
                                                                     {"CLIENT", "ID"},
                                                                     {"CLIENT", "KILL"},
                                                                     {"client", "setname"},
                                                                     {"CLIENT", "REPLYX"},
                                                                     {"SWAPDB", "0", "1"},
                                                                     {"MOVE", "k", "1"},
                                                                     {"PUBLISH", "c", "m"},
                                                                     {"AUT"},
                                                                     {""},
                                                                     {"m\xffLTI"}}) {
    EXPECT_EQ(classify_command(args).change, StateChange::kNone) << args.front();
    EXPECT_TRUE(classify_command(args).name.empty()) << args.front();
  }
  EXPECT_EQ(classify_command({}).change, StateChange::kNone);
}

TEST(ClassifyCommandTest, AdviceNamesTheSafeApi) {
  EXPECT_NE(classify({"MULTI"}).advice.find("Client::pipeline"), std::string_view::npos);
  EXPECT_NE(classify({"SELECT", "1"}).advice.find("redis://host:port/1"), std::string_view::npos);
  EXPECT_NE(classify({"SUBSCRIBE"}).advice.find("Connection::subscribe()"), std::string_view::npos);
  EXPECT_NE(classify({"AUTH", "x"}).advice.find("URL"), std::string_view::npos);
  EXPECT_NE(classify({"MONITOR"}).advice.find("Client::dedicated_connection()"),
            std::string_view::npos);
}

TEST(PipelineStateTest, PlainPipelineLeavesTheConnectionAlone) {
  Pipeline pipeline;
  pipeline.add({"SET", "k", "v"}).add({"GET", "k"}).add({"UNWATCH"});
  EXPECT_FALSE(pipeline.changes_connection_state());
  EXPECT_TRUE(pipeline.connection_state_change().empty());
}

TEST(PipelineStateTest, ClosedTransactionsLeaveTheConnectionAlone) {
  Pipeline pipeline;
  pipeline.add({"MULTI"}).add({"SET", "k", "v"});
  EXPECT_TRUE(pipeline.changes_connection_state());
  pipeline.add({"EXEC"});
  EXPECT_FALSE(pipeline.changes_connection_state());
  pipeline.add({"watch", "k"}).add({"GET", "k"});
  EXPECT_TRUE(pipeline.changes_connection_state());
  pipeline.add({"multi"}).add({"INCR", "k"}).add({"discard"});
  EXPECT_FALSE(pipeline.changes_connection_state());
  pipeline.add({"WATCH", "k"}).add({"UNWATCH"});
  EXPECT_FALSE(pipeline.changes_connection_state());
}

TEST(PipelineStateTest, OpenMultiIsReportedWithItsPosition) {
  Pipeline pipeline;
  pipeline.add({"PING"}).add({"MULTI"}).add({"MULTI"}).add({"SET", "k", "v"});
  ASSERT_TRUE(pipeline.changes_connection_state());
  const std::string why = pipeline.connection_state_change();
  EXPECT_NE(why.find("command 2 of 4 (MULTI)"), std::string::npos) << why;
  EXPECT_NE(why.find("Client::pipeline"), std::string::npos) << why;
}

TEST(PipelineStateTest, ExecWithoutMultiForgetsNoWatch) {
  // The server refuses EXEC and DISCARD outside MULTI; the WATCH stays.
  Pipeline pipeline;
  pipeline.add({"WATCH", "k"}).add({"EXEC"}).add({"DISCARD"});
  ASSERT_TRUE(pipeline.changes_connection_state());
  EXPECT_NE(pipeline.connection_state_change().find("command 1 of 3 (WATCH)"), std::string::npos);
}

TEST(PipelineStateTest, WatchOrUnwatchInsideMultiChangesNothingUntilExec) {
  // WATCH inside MULTI is refused; UNWATCH inside MULTI is queued.
  Pipeline pipeline;
  pipeline.add({"MULTI"}).add({"WATCH", "k"}).add({"EXEC"});
  EXPECT_FALSE(pipeline.changes_connection_state());
  Pipeline unwatch;
  unwatch.add({"WATCH", "k"}).add({"MULTI"}).add({"UNWATCH"}).add({"EXEC"});
  EXPECT_FALSE(unwatch.changes_connection_state());
}

TEST(PipelineStateTest, LastingCommandCountsEvenInsideATransaction) {
  Pipeline pipeline;
  pipeline.add({"MULTI"}).add({"select", "1"}).add({"EXEC"}).add({"SUBSCRIBE", "c"});
  ASSERT_TRUE(pipeline.changes_connection_state());
  const std::string why = pipeline.connection_state_change();
  EXPECT_NE(why.find("command 2 of 4 (SELECT)"), std::string::npos) << why;
  EXPECT_NE(why.find("redis://host:port/1"), std::string::npos) << why;
}

TEST(PipelineStateTest, ClearForgetsTheState) {
  Pipeline pipeline;
  pipeline.add({"SELECT", "1"}).add({"MULTI"}).add({"WATCH", "k"});
  pipeline.clear();
  EXPECT_FALSE(pipeline.changes_connection_state());
  EXPECT_TRUE(pipeline.connection_state_change().empty());
  pipeline.add({"MULTI"}).add({"EXEC"});
  EXPECT_FALSE(pipeline.changes_connection_state());
}

TEST(PipelineStateTest, EveryAddOverloadClassifies) {
  Pipeline from_strings;
  from_strings.add(std::vector<std::string>{"multi"});
  EXPECT_TRUE(from_strings.changes_connection_state());
  const std::vector<std::string_view> views = {"Client", "Reply", "Off"};
  Pipeline from_views;
  from_views.add(std::span<const std::string_view>(views));
  EXPECT_TRUE(from_views.changes_connection_state());
  EXPECT_NE(from_views.connection_state_change().find("CLIENT REPLY"), std::string::npos);
}

}  // namespace
}  // namespace prodsafe::redis
