// The exactly-once checker over ledger entries, and the invariant rows and
// table every chaos check reports with.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chaos/history/checker.hpp"
#include "chaos/history/invariant.hpp"
#include "chaos/history/ledger.hpp"
#include "ledger_fixtures.hpp"
#include "prodsafe/core/error.hpp"

namespace prodsafe::chaos {
namespace {

namespace fs = std::filesystem;
using fixtures::append_raw;
using fixtures::executed;
using fixtures::order;
using fixtures::TempDir;
using ::testing::HasSubstr;

TEST(CheckerTest, NumberedOpIdsFillTheOnePlaceholder) {
  EXPECT_THAT(numbered_op_ids("order-%d", 3),
              ::testing::ElementsAre("order-0", "order-1", "order-2"));
  EXPECT_THAT(numbered_op_ids("{}-buy", 2, 7), ::testing::ElementsAre("7-buy", "8-buy"));
  EXPECT_THROW((void)numbered_op_ids("order", 3), InvalidArgument);
  EXPECT_THROW((void)numbered_op_ids("order-%d-{}", 3), InvalidArgument);
}

TEST(CheckerTest, EveryOpExecutedOnceHoldsEveryInvariant) {
  const std::vector<std::string> expected = numbered_op_ids("order-%d", 3);
  const std::vector<LedgerEntry> entries = {executed("order-0", 1, 10), executed("order-2", 1, 20),
                                            executed("order-1", 3, 30, "w2")};
  const CheckReport report = check_exactly_once(expected, entries);
  EXPECT_TRUE(report.ok()) << report.table();
  EXPECT_EQ(report.expected, 3u);
  EXPECT_EQ(report.executions, 3u);
  EXPECT_EQ(report.executed_once, 3u);
  ASSERT_EQ(report.invariants.size(), 5u);
  for (const Invariant& invariant : report.invariants) {
    EXPECT_TRUE(invariant.held) << invariant.name;
    EXPECT_EQ(invariant.count, 0u);
  }
  EXPECT_THAT(report.table(), ::testing::Not(HasSubstr("VIOLATED")));
}

TEST(CheckerTest, InjectedDuplicateIsViolated) {
  const std::vector<std::string> expected = numbered_op_ids("order-%d", 2);
  // The recovering execution carries the higher token, but it still ran twice.
  LedgerEntry again = executed("order-1", 2, 50, "w2");
  again.recovering = true;
  const std::vector<LedgerEntry> entries = {executed("order-0", 1, 10), executed("order-1", 1, 20),
                                            again};
  const CheckReport report = check_exactly_once(expected, entries);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.executed_once, 1u);
  ASSERT_EQ(report.duplicates.size(), 1u);
  EXPECT_EQ(report.duplicates[0].op_id, "order-1");
  EXPECT_EQ(report.duplicates[0].executions.size(), 2u);
  EXPECT_TRUE(report.duplicates[0].tokens_increase);
  const Invariant* duplicated = report.find(kNoOpDuplicated);
  ASSERT_NE(duplicated, nullptr);
  EXPECT_FALSE(duplicated->held);
  EXPECT_EQ(duplicated->count, 1u);
  EXPECT_THAT(duplicated->detail, HasSubstr("order-1 x2 (tokens 1, 2; workers w1, w2)"));
  EXPECT_TRUE(report.find(kFencingTokensIncrease)->held);
  EXPECT_TRUE(report.find(kNoOpLost)->held);
  EXPECT_THAT(report.table(), HasSubstr("VIOLATED"));
}

TEST(CheckerTest, DuplicateUnderTheSameTokenAlsoBreaksFencing) {
  const std::vector<std::string> expected = {"order-1"};
  const std::vector<LedgerEntry> entries = {executed("order-1", 4, 10),
                                            executed("order-1", 4, 20, "w2")};
  const CheckReport report = check_exactly_once(expected, entries);
  ASSERT_EQ(report.duplicates.size(), 1u);
  EXPECT_FALSE(report.duplicates[0].tokens_increase);
  const Invariant* fencing = report.find(kFencingTokensIncrease);
  EXPECT_FALSE(fencing->held);
  EXPECT_EQ(fencing->count, 1u);
  EXPECT_THAT(fencing->detail, HasSubstr("order-1 (tokens 4, 4)"));
}

TEST(CheckerTest, FencingFollowsLedgerOrderNotInputOrder) {
  // Listed newest first; by steady time the tokens go 1, 2, 3.
  const std::vector<LedgerEntry> increasing = {executed("a", 3, 300), executed("a", 1, 100),
                                               executed("a", 2, 200)};
  EXPECT_TRUE(check_fencing_tokens_increase(increasing).held);
  const std::vector<LedgerEntry> decreasing = {executed("a", 1, 300), executed("a", 2, 100),
                                               executed("b", 5, 100), executed("b", 6, 200)};
  const Invariant fencing = check_fencing_tokens_increase(decreasing);
  EXPECT_FALSE(fencing.held);
  EXPECT_EQ(fencing.count, 1u);
  EXPECT_THAT(fencing.detail, HasSubstr("a (tokens 2, 1)"));
}

TEST(CheckerTest, LostOpIsViolated) {
  const std::vector<std::string> expected = numbered_op_ids("order-%d", 3);
  const std::vector<LedgerEntry> entries = {executed("order-0", 1, 10), executed("order-2", 1, 20)};
  const CheckReport report = check_exactly_once(expected, entries);
  EXPECT_FALSE(report.ok());
  EXPECT_THAT(report.lost, ::testing::ElementsAre("order-1"));
  const Invariant* lost = report.find(kNoOpLost);
  EXPECT_FALSE(lost->held);
  EXPECT_EQ(lost->count, 1u);
  EXPECT_EQ(lost->detail, "order-1");
  EXPECT_TRUE(report.find(kNoOpDuplicated)->held);
}

TEST(CheckerTest, UnexpectedOpIsViolated) {
  const std::vector<std::string> expected = {"order-0"};
  const std::vector<LedgerEntry> entries = {executed("order-0", 1, 10),
                                            executed("order-99", 1, 20)};
  const CheckReport report = check_exactly_once(expected, entries);
  EXPECT_FALSE(report.ok());
  EXPECT_THAT(report.unexpected, ::testing::ElementsAre("order-99"));
  EXPECT_FALSE(report.find(kNoUnexpectedOp)->held);
  EXPECT_EQ(report.executed_once, 1u);
}

TEST(CheckerTest, DetailNamesTheFirstFewAndCountsTheRest) {
  const CheckReport report =
      check_exactly_once(numbered_op_ids("o{}", 8), std::span<const LedgerEntry>());
  EXPECT_EQ(report.find(kNoOpLost)->count, 8u);
  EXPECT_EQ(report.find(kNoOpLost)->detail, "o0, o1, o2, o3, o4 and 3 more");
}

TEST(CheckerTest, ExpectedIdsMustBeDistinct) {
  const std::vector<std::string> expected = {"a", "b", "a"};
  EXPECT_THROW((void)check_exactly_once(expected, std::span<const LedgerEntry>()), InvalidArgument);
}

TEST(CheckerTest, UnreadableLedgerLinesViolateButTornLastLinesDoNot) {
  TempDir dir;
  const fs::path file = ledger_path(dir.path(), "w");
  LedgerWriter(file).append(order("order-0"));
  append_raw(file, R"({"op":"order-1")");
  const std::vector<std::string> expected = {"order-0"};

  const CheckReport torn_only = check_exactly_once(expected, read_ledgers(dir.path()));
  EXPECT_TRUE(torn_only.ok()) << torn_only.table();
  EXPECT_EQ(torn_only.torn_lines.size(), 1u);
  EXPECT_EQ(torn_only.ledger_files, 1u);

  append_raw(file, "\n");  // the fragment is now a whole, unreadable line
  const CheckReport broken = check_exactly_once(expected, read_ledgers(dir.path()));
  EXPECT_FALSE(broken.ok());
  const Invariant* readable = broken.find(kLedgersReadable);
  EXPECT_FALSE(readable->held);
  EXPECT_THAT(readable->detail, HasSubstr(file.string() + ":2"));
}

TEST(CheckerTest, TableAlignsItsColumns) {
  const CheckReport report =
      check_exactly_once(numbered_op_ids("order-%d", 2), std::vector{executed("order-0", 1, 1)});
  const std::string table = report.table();
  std::vector<std::string> rows;
  for (std::size_t begin = 0, end; (end = table.find('\n', begin)) != std::string::npos;
       begin = end + 1) {
    rows.push_back(table.substr(begin, end - begin));
  }
  ASSERT_EQ(rows.size(), 1u + 1u + report.invariants.size()) << table;  // summary, header, rows
  const std::size_t status_column = rows[1].find("STATUS");
  const std::size_t detail_column = rows[1].find("DETAIL");
  for (std::size_t i = 2; i < rows.size(); ++i) {
    const std::string status = rows[i].substr(status_column, 8);
    EXPECT_TRUE(status.starts_with("held") || status.starts_with("VIOLATED")) << rows[i];
    EXPECT_EQ(rows[i][status_column - 1], ' ') << rows[i];
  }
  EXPECT_EQ(rows[3].substr(detail_column), "order-1") << table;
  EXPECT_THAT(rows[3], HasSubstr("VIOLATED"));
  EXPECT_THAT(rows[0], HasSubstr("2 expected ops, 1 executions"));
}

TEST(CheckerTest, JsonCarriesRowsAndViolations) {
  std::vector<LedgerEntry> entries = {executed("a", 1, 1), executed("a", 2, 2, "w2")};
  entries[1].file = "/tmp/w2.ledger";
  entries[1].line = 9;
  const nlohmann::json json =
      check_exactly_once(std::vector<std::string>{"a", "b"}, entries).to_json();
  EXPECT_FALSE(json["ok"].get<bool>());
  EXPECT_EQ(json["expected"], 2);
  EXPECT_EQ(json["invariants"].size(), 5u);
  EXPECT_EQ(json["invariants"][1]["name"], std::string(kNoOpLost));
  EXPECT_FALSE(json["invariants"][1]["held"].get<bool>());
  EXPECT_EQ(json["lost"], nlohmann::json::array({"b"}));
  ASSERT_EQ(json["duplicates"].size(), 1u);
  EXPECT_TRUE(json["duplicates"][0]["tokens_increase"].get<bool>());
  EXPECT_EQ(json["duplicates"][0]["executions"][1]["location"], "/tmp/w2.ledger:9");
  EXPECT_EQ(json["duplicates"][0]["executions"][1]["worker"], "w2");
}

// ---- Invariant rows ------------------------------------------------------

TEST(InvariantTest, HeldUnlessSomethingViolatesIt) {
  const Invariant held = held_unless("no op lost", std::vector<std::string>{});
  EXPECT_TRUE(held.held);
  EXPECT_EQ(held.count, 0u);
  EXPECT_EQ(held.detail, "");

  const std::vector<std::string> violations = {"a", "b", "c", "d"};
  const Invariant violated = held_unless("no op lost", violations, 2);
  EXPECT_FALSE(violated.held);
  EXPECT_EQ(violated.name, "no op lost");
  EXPECT_EQ(violated.count, 4u);
  EXPECT_EQ(violated.detail, "a, b and 2 more");
}

TEST(InvariantTest, HeldUnlessACountIsNonZeroAndKeepsTheDetailOnlyThen) {
  const Invariant held = held_unless("no worker hung", 0, "evidence");
  EXPECT_TRUE(held.held);
  EXPECT_EQ(held.detail, "");
  const Invariant violated = held_unless("no worker hung", 2, "w1, w2");
  EXPECT_FALSE(violated.held);
  EXPECT_EQ(violated.count, 2u);
  EXPECT_EQ(violated.detail, "w1, w2");
}

TEST(InvariantTest, TablePutsEachMeasurementBeforeTheInvariantAtItsPosition) {
  const std::vector<Invariant> invariants = {held_unless("first", 0),
                                             held_unless("second", 1, "why")};
  const std::vector<Measurement> measurements = {{.name = "evidence", .count = 7, .position = 1}};
  EXPECT_EQ(invariant_table(invariants, measurements),
            "INVARIANT  STATUS    COUNT  DETAIL\n"
            "first      held          0\n"
            "evidence   measured      7\n"
            "second     VIOLATED      1  why\n");
}

}  // namespace
}  // namespace prodsafe::chaos
