// check_fenced_executions(): the verdict of worker_crash. A fenced duplicate
// (a faulted worker's lower token, superseded by a recovery with a higher
// token) holds; every silent duplicate is VIOLATED in its own row.
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "chaos/history/fencing.hpp"

namespace prodsafe::chaos {
namespace {

using ::testing::HasSubstr;

constexpr std::int64_t kVictimPid = 100;
constexpr std::int64_t kHealthyPid = 200;
constexpr std::int64_t kRecoveryPid = 300;

// An execution as a ledger reader returns it, at steady time `steady_ns`.
LedgerEntry executed(std::string op, std::uint64_t token, std::int64_t steady_ns,
                     std::string worker, std::int64_t pid, bool recovering = false) {
  return LedgerEntry{.op_id = std::move(op),
                     .fencing_token = token,
                     .worker = std::move(worker),
                     .pid = pid,
                     .recovering = recovering,
                     .steady_ns = steady_ns};
}

WorkerFault fault(WorkerFault::Kind kind, std::string op, std::uint64_t token) {
  return WorkerFault{.kind = kind,
                     .worker = "w1",
                     .pid = kVictimPid,
                     .op = std::move(op),
                     .token = token,
                     .phase = WorkerPhase::kEffectWritten};
}

const Invariant& row_named(const FencingCheck& check, std::string_view name) {
  for (const Invariant& row : check.invariants) {
    if (row.name == name) return row;
  }
  ADD_FAILURE() << "no row " << name;
  static const Invariant missing{.name = "missing", .held = false};
  return missing;
}

// Every row but `violated` holds; `violated` does not, and counts `count`.
void expect_only_violated(const FencingCheck& check, std::string_view violated, std::size_t count) {
  ASSERT_EQ(check.invariants.size(), 3u);
  for (const Invariant& row : check.invariants) {
    if (row.name == violated) {
      EXPECT_FALSE(row.held) << row.name;
      EXPECT_EQ(row.count, count) << row.name << ": " << row.detail;
    } else {
      EXPECT_TRUE(row.held) << row.name << ": " << row.detail;
    }
  }
}

TEST(FencingTest, RowsComeInTheDocumentedOrder) {
  const FencingCheck check = check_fenced_executions({}, {}, {});
  ASSERT_EQ(check.invariants.size(), 3u);
  EXPECT_EQ(check.invariants[0].name, kNoTokenTwice);
  EXPECT_EQ(check.invariants[1].name, kExtrasAreFenced);
  EXPECT_EQ(check.invariants[2].name, kFaultsRecovered);
}

TEST(FencingTest, EachOpExecutedOnceHoldsEveryRow) {
  const std::vector<LedgerEntry> entries = {executed("crash-0", 1, 10, "w1", kVictimPid),
                                            executed("crash-1", 2, 20, "w2", kHealthyPid),
                                            executed("crash-2", 3, 30, "w1", kVictimPid)};
  const FencingCheck check = check_fenced_executions(entries, {}, {});
  for (const Invariant& row : check.invariants) {
    EXPECT_TRUE(row.held) << row.name << ": " << row.detail;
    EXPECT_EQ(row.count, 0u);
    EXPECT_EQ(row.detail, "");
  }
  EXPECT_EQ(check.after_kill + check.superseded_paused + check.silent, 0u);
  ASSERT_EQ(check.final_execution.size(), 3u);
  EXPECT_EQ(check.final_execution.at("crash-1").worker, "w2");
}

TEST(FencingTest, KilledWorkersLowerTokenSupersededByARecoveryHolds) {
  const WorkerFault kill = fault(WorkerFault::Kind::kKill, "crash-4", 5);
  const std::vector<LedgerEntry> entries = {
      executed("crash-4", 5, 10, "w1", kVictimPid),
      executed("crash-4", 6, 20, "redeliver1", kRecoveryPid, true)};
  const FencingCheck check = check_fenced_executions(entries, {&kill, 1}, {kVictimPid});
  for (const Invariant& row : check.invariants) {
    EXPECT_TRUE(row.held) << row.name << ": " << row.detail;
  }
  EXPECT_EQ(check.after_kill, 1u);
  EXPECT_EQ(check.silent, 0u);
  EXPECT_EQ(check.final_execution.at("crash-4").fencing_token, 6u);
  EXPECT_EQ(check.final_execution.at("crash-4").worker, "redeliver1");
}

TEST(FencingTest, PausedWorkersLateExecutionSupersededByARecoveryHolds) {
  const WorkerFault pause = fault(WorkerFault::Kind::kPause, "crash-4", 5);
  // The paused victim finishes its effect after the recovery: ledger order
  // differs from token order, and the higher token still stands.
  const std::vector<LedgerEntry> entries = {
      executed("crash-4", 6, 10, "redeliver1", kRecoveryPid, true),
      executed("crash-4", 5, 20, "w1", kVictimPid)};
  const FencingCheck check = check_fenced_executions(entries, {&pause, 1}, {});
  for (const Invariant& row : check.invariants) {
    EXPECT_TRUE(row.held) << row.name << ": " << row.detail;
  }
  EXPECT_EQ(check.superseded_paused, 1u);
  EXPECT_EQ(check.silent, 0u);
  EXPECT_EQ(check.final_execution.at("crash-4").worker, "redeliver1");
}

TEST(FencingTest, DuplicateByTwoHealthyWorkersIsViolated) {
  const std::vector<LedgerEntry> entries = {executed("crash-7", 1, 10, "w1", kVictimPid),
                                            executed("crash-7", 2, 20, "w2", kHealthyPid, true)};
  const FencingCheck check = check_fenced_executions(entries, {}, {});
  expect_only_violated(check, kExtrasAreFenced, 1);
  EXPECT_THAT(row_named(check, kExtrasAreFenced).detail,
              HasSubstr("crash-7 by healthy w1 (token 1; final token 2)"));
  EXPECT_EQ(check.silent, 1u);
}

TEST(FencingTest, SameTokenExecutedTwiceIsViolated) {
  // Even by a killed worker: a token is granted to one execution only.
  const std::vector<LedgerEntry> entries = {
      executed("crash-3", 4, 10, "w1", kVictimPid),
      executed("crash-3", 4, 20, "redeliver1", kRecoveryPid, true)};
  const FencingCheck check = check_fenced_executions(entries, {}, {kVictimPid});
  expect_only_violated(check, kNoTokenTwice, 1);
  EXPECT_THAT(row_named(check, kNoTokenTwice).detail,
              HasSubstr("crash-3 token 4 (w1, redeliver1)"));
}

TEST(FencingTest, ExtraExecutionAboveTheRecoverysTokenIsViolated) {
  const WorkerFault kill = fault(WorkerFault::Kind::kKill, "crash-4", 5);
  // The recovery is fenced correctly, but a healthy worker then ran the op
  // again with a still higher token, without recovering anything: the
  // recovery's execution is now an unfenced extra, and so is the last one.
  const std::vector<LedgerEntry> entries = {
      executed("crash-4", 5, 10, "w1", kVictimPid),
      executed("crash-4", 6, 20, "redeliver1", kRecoveryPid, true),
      executed("crash-4", 7, 30, "w2", kHealthyPid)};
  const FencingCheck check = check_fenced_executions(entries, {&kill, 1}, {kVictimPid});
  expect_only_violated(check, kExtrasAreFenced, 2);
  const std::string& detail = row_named(check, kExtrasAreFenced).detail;
  EXPECT_THAT(detail, HasSubstr("crash-4 by healthy redeliver1 (token 6; final token 7)"));
  EXPECT_THAT(detail, HasSubstr("crash-4 token 7 by w2 ran again without recovering"));
  EXPECT_EQ(check.after_kill, 1u);
  EXPECT_EQ(check.silent, 1u);
  EXPECT_EQ(check.final_execution.at("crash-4").fencing_token, 7u);
}

TEST(FencingTest, HigherTokenThatDidNotRecoverIsViolated) {
  // The killed worker's lower token is excused, but the execution above it
  // did not take over an expired lease: nothing fenced the first one out.
  const std::vector<LedgerEntry> entries = {executed("crash-4", 5, 10, "w1", kVictimPid),
                                            executed("crash-4", 6, 20, "w2", kHealthyPid)};
  const FencingCheck check = check_fenced_executions(entries, {}, {kVictimPid});
  expect_only_violated(check, kExtrasAreFenced, 1);
  EXPECT_THAT(row_named(check, kExtrasAreFenced).detail,
              HasSubstr("crash-4 token 6 by w2 ran again without recovering"));
}

TEST(FencingTest, FaultNeverRecoveredIsViolated) {
  const WorkerFault kill = fault(WorkerFault::Kind::kKill, "crash-4", 5);
  const std::vector<LedgerEntry> entries = {executed("crash-4", 5, 10, "w1", kVictimPid)};
  const FencingCheck check = check_fenced_executions(entries, {&kill, 1}, {kVictimPid});
  expect_only_violated(check, kFaultsRecovered, 1);
  EXPECT_THAT(row_named(check, kFaultsRecovered).detail, HasSubstr("crash-4 of w1 (token 5)"));
}

TEST(FencingTest, RecoveryWithALowerTokenThanTheFaultDoesNotCount) {
  const WorkerFault pause = fault(WorkerFault::Kind::kPause, "crash-4", 5);
  const std::vector<LedgerEntry> entries = {
      executed("crash-4", 3, 10, "redeliver1", kRecoveryPid, true)};
  const FencingCheck check = check_fenced_executions(entries, {&pause, 1}, {});
  expect_only_violated(check, kFaultsRecovered, 1);
}

TEST(FencingTest, HigherTokenThatDidNotRecoverDoesNotRecoverTheFault) {
  const WorkerFault kill = fault(WorkerFault::Kind::kKill, "crash-4", 5);
  const std::vector<LedgerEntry> entries = {executed("crash-4", 5, 10, "w1", kVictimPid),
                                            executed("crash-4", 6, 20, "w2", kHealthyPid)};
  const FencingCheck check = check_fenced_executions(entries, {&kill, 1}, {kVictimPid});
  EXPECT_TRUE(row_named(check, kNoTokenTwice).held);
  EXPECT_FALSE(row_named(check, kExtrasAreFenced).held);
  EXPECT_FALSE(row_named(check, kFaultsRecovered).held);
  EXPECT_THAT(row_named(check, kFaultsRecovered).detail, HasSubstr("crash-4 of w1 (token 5)"));
}

TEST(FencingTest, FaultOnAnOpNeverExecutedIsViolated) {
  const WorkerFault kill = fault(WorkerFault::Kind::kKill, "crash-9", 5);
  const FencingCheck check = check_fenced_executions({}, {&kill, 1}, {kVictimPid});
  expect_only_violated(check, kFaultsRecovered, 1);
}

TEST(FencingTest, PauseOnAnotherOpDoesNotExcuseADuplicate) {
  // w1 was paused on crash-4; its extra execution of crash-5 is silent.
  const WorkerFault pause = fault(WorkerFault::Kind::kPause, "crash-4", 5);
  const std::vector<LedgerEntry> entries = {
      executed("crash-4", 5, 10, "w1", kVictimPid),
      executed("crash-4", 6, 20, "redeliver1", kRecoveryPid, true),
      executed("crash-5", 7, 30, "w1", kVictimPid),
      executed("crash-5", 8, 40, "redeliver2", kRecoveryPid, true)};
  const FencingCheck check = check_fenced_executions(entries, {&pause, 1}, {});
  expect_only_violated(check, kExtrasAreFenced, 1);
  EXPECT_THAT(row_named(check, kExtrasAreFenced).detail, HasSubstr("crash-5 by healthy w1"));
  EXPECT_EQ(check.superseded_paused, 1u);
  EXPECT_EQ(check.silent, 1u);
}

}  // namespace
}  // namespace prodsafe::chaos
