// The failover figures: which acknowledged claims and commits the final
// master lost, and how long the workers took to succeed again after a fault;
// and the worker's durability setting, read from its spec (a negative one
// refused).
#include "chaos/history/failover_history.hpp"

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chaos/worker/worker.hpp"

namespace prodsafe::chaos {
namespace {

LedgerEntry execution(const std::string& op, std::uint64_t token) {
  return LedgerEntry{.op_id = op, .fencing_token = token, .worker = "w1"};
}

WorkerEvent answer(const std::string& event, const std::string& op, std::uint64_t token,
                   std::int64_t started_ms, std::int64_t ended_ms) {
  return WorkerEvent{.event = event,
                     .op = op,
                     .token = token,
                     .started_ns = started_ms * 1'000'000,
                     .ended_ns = ended_ms * 1'000'000};
}

TEST(FailoverFiguresTest, AClaimIsLostWhenTheFinalRecordCarriesAnotherTokenOrNone) {
  // order-1 ran under 10, its record was lost and it ran again under 20;
  // order-2 kept its one claim; order-3's record is gone altogether.
  const std::vector<LedgerEntry> executions = {execution("order-1", 10), execution("order-1", 20),
                                               execution("order-2", 30), execution("order-3", 40)};
  const std::map<std::string, FinalRecord> final_store = {{"order-1", {"completed", 20}},
                                                          {"order-2", {"completed", 30}}};
  const FailoverFigures figures = failover_figures(executions, {}, final_store, {});
  EXPECT_EQ(figures.claims, 4U);
  ASSERT_EQ(figures.claims_lost.size(), 2U);
  EXPECT_EQ(figures.claims_lost[0], "order-1 token 10 (final: completed 20)");
  EXPECT_EQ(figures.claims_lost[1], "order-3 token 40 (final: no record)");
}

TEST(FailoverFiguresTest, AnAcknowledgedCommitIsLostUnlessItsCompletedRecordIsThere) {
  const std::vector<WorkerEvent> answers = {
      answer("committed", "order-1", 10, 0, 1),   // superseded by token 20
      answer("committed", "order-2", 30, 0, 1),   // kept
      answer("committed", "order-3", 40, 0, 1),   // the claim stayed, the commit did not
      answer("journaled", "order-4", 50, 0, 1),   // never acknowledged: not counted
      answer("duplicate", "order-2", 30, 2, 3)};  // not a commit
  const std::map<std::string, FinalRecord> final_store = {{"order-1", {"completed", 20}},
                                                          {"order-2", {"completed", 30}},
                                                          {"order-3", {"in_progress", 40}}};
  const FailoverFigures figures = failover_figures({}, answers, final_store, {});
  EXPECT_EQ(figures.commits_acknowledged, 3U);
  ASSERT_EQ(figures.commits_lost.size(), 2U);
  EXPECT_EQ(figures.commits_lost[0], "order-1 token 10 (final: completed 20)");
  EXPECT_EQ(figures.commits_lost[1], "order-3 token 40 (final: in_progress 40)");
}

TEST(FailoverFiguresTest, ResumeIsTheFirstSuccessOfACallStartedAfterTheFault) {
  const std::vector<WorkerEvent> answers = {
      answer("committed", "order-1", 1, 990, 1'001),    // started before the fault at 1,000
      answer("journaled", "order-2", 2, 1'100, 1'200),  // its commit failed: no success
      answer("duplicate", "order-3", 3, 1'500, 3'500),
      answer("committed", "order-4", 4, 2'000, 3'000),  // the first to end: 2,000 ms
      answer("committed", "order-5", 5, 9'000, 9'010)};
  const std::vector<FaultTime> faults = {{.at_ns = 1'000'000'000}, {.at_ns = 10'000'000'000}};
  const FailoverFigures figures = failover_figures({}, answers, {}, faults);
  ASSERT_EQ(figures.resume_ms.size(), 2U);
  EXPECT_EQ(figures.resume_ms[0], 2'000);
  EXPECT_EQ(figures.resume_ms[1], std::nullopt) << "nothing succeeded after the second fault";
}

TEST(FailoverFiguresTest, ALossIsCountedAgainstTheRoundNotOverWhenItWasAcknowledged) {
  // The round: a fault at 1 s, the topology whole again at 3 s.
  LedgerEntry early = execution("order-1", 10);
  early.steady_ns = 500'000'000;  // before the fault
  LedgerEntry during = execution("order-2", 20);
  during.steady_ns = 2'500'000'000;  // taken by the old master back before its demotion
  LedgerEntry late = execution("order-3", 30);
  late.steady_ns = 3'500'000'000;  // after the round: no fault came after
  const std::vector<WorkerEvent> answers = {answer("committed", "order-1", 10, 400, 600)};
  const std::vector<FaultTime> faults = {{.at_ns = 1'000'000'000, .healed_ns = 3'000'000'000}};
  const FailoverFigures figures =
      failover_figures(std::vector{early, during, late}, answers, {}, faults);
  EXPECT_EQ(figures.claims_lost_by_fault, (std::vector<std::size_t>{2, 1}));
  EXPECT_EQ(figures.commits_lost_by_fault, (std::vector<std::size_t>{1, 0}));
}

TEST(FailoverFiguresTest, ClaimsShortOfReplicasAreCountedPerRound) {
  // A fault at 1 s, whole again at 3 s; another at 5 s, whole at 6 s.
  const std::vector<WorkerEvent> answers = {
      answer("short_of_replicas", "order-1", 0, 2'000, 2'250),  // during the first round
      answer("short_of_replicas", "order-1", 0, 2'300, 2'550),
      answer("committed", "order-1", 7, 2'600, 2'700),           // not a shortfall
      answer("short_of_replicas", "order-2", 0, 5'500, 5'750),   // during the second
      answer("short_of_replicas", "order-3", 0, 7'000, 7'250)};  // after the last round
  const std::vector<FaultTime> faults = {{.at_ns = 1'000'000'000, .healed_ns = 3'000'000'000},
                                         {.at_ns = 5'000'000'000, .healed_ns = 6'000'000'000}};
  const FailoverFigures figures = failover_figures({}, answers, {}, faults);
  EXPECT_EQ(figures.shortfalls_by_fault, (std::vector<std::size_t>{2, 1, 1}));
}

TEST(FailoverFiguresTest, ResumeCountsOnlyTheOpsTheFaultCutOff) {
  // One shard failed: order-1 lives elsewhere and never stopped.
  const std::vector<WorkerEvent> answers = {answer("committed", "order-1", 1, 1'010, 1'011),
                                            answer("committed", "order-2", 2, 1'500, 2'700)};
  const std::vector<FaultTime> faults = {
      {.at_ns = 1'000'000'000, .affects = [](std::string_view op) { return op == "order-2"; }}};
  const FailoverFigures figures = failover_figures({}, answers, {}, faults);
  ASSERT_EQ(figures.resume_ms.size(), 1U);
  EXPECT_EQ(figures.resume_ms[0], 1'700);
}

TEST(FailoverFiguresTest, AWorkerRefusesANegativeDurabilitySetting) {
  const std::filesystem::path directory =
      std::filesystem::path(::testing::TempDir()) / "failover_wait_replicas";
  std::filesystem::create_directories(directory);
  WorkerSpec spec;
  spec.name = "w1";
  spec.redis_url = "redis://127.0.0.1:1";
  spec.journal_directory = directory.string();
  spec.ledger_directory = directory.string();
  spec.files_directory = directory.string();
  spec.wait_replicas = 1;
  EXPECT_EQ(nlohmann::json(spec).get<WorkerSpec>().wait_replicas, 1);
  spec.wait_replicas = -1;
  testing::internal::CaptureStderr();
  EXPECT_EQ(run_worker(spec), kWorkerBadSpec);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("is negative"), std::string::npos);
}

}  // namespace
}  // namespace prodsafe::chaos
