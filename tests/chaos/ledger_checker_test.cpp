// The chaos ledgers (fsynced append-only files) and the exactly-once checker.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "chaos/checker.hpp"
#include "chaos/ledger.hpp"
#include "prodsafe/core/error.hpp"

namespace prodsafe::chaos {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "prodsafe-chaos-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void append_raw(const fs::path& file, std::string_view bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::app);
  out << bytes;
}

LedgerEntry order(std::string op, std::uint64_t token = 1, std::string worker = "w1") {
  return LedgerEntry{.op_id = std::move(op), .fencing_token = token, .worker = std::move(worker)};
}

// An entry as a reader returns it, at steady time `steady_ns`.
LedgerEntry executed(std::string op, std::uint64_t token, std::int64_t steady_ns,
                     std::string worker = "w1") {
  LedgerEntry entry = order(std::move(op), token, std::move(worker));
  entry.steady_ns = steady_ns;
  return entry;
}

// ---- Ledger -------------------------------------------------------------

TEST(LedgerTest, AppendWritesOneWholeLinePerEntryAndReadsBack) {
  TempDir dir;
  const fs::path file = ledger_path(dir.path(), "w1");
  EXPECT_EQ(file.filename(), "w1.ledger");
  {
    LedgerWriter writer(file);
    writer.append(order("order-1", 1));
    LedgerEntry recovering = order("order-2", 7);
    recovering.recovering = true;
    recovering.pid = 4242;
    const LedgerEntry written = writer.append(recovering);
    EXPECT_EQ(written.sequence, 2u);
    EXPECT_EQ(written.pid, 4242);
  }
  const std::string text = slurp(file);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
  EXPECT_EQ(text.back(), '\n');

  const LedgerContents contents = read_ledger(file);
  EXPECT_TRUE(contents.errors.empty());
  EXPECT_TRUE(contents.torn_lines.empty());
  ASSERT_EQ(contents.entries.size(), 2u);
  const LedgerEntry& first = contents.entries[0];
  const LedgerEntry& second = contents.entries[1];
  EXPECT_EQ(first.op_id, "order-1");
  EXPECT_EQ(first.fencing_token, 1u);
  EXPECT_EQ(first.worker, "w1");
  EXPECT_EQ(first.pid, ::getpid()) << "a zero pid is replaced by the writer's";
  EXPECT_FALSE(first.recovering);
  EXPECT_EQ(first.sequence, 1u);
  EXPECT_EQ(first.file, file.string());
  EXPECT_EQ(first.line, 1u);
  EXPECT_EQ(second.op_id, "order-2");
  EXPECT_EQ(second.fencing_token, 7u);
  EXPECT_TRUE(second.recovering);
  EXPECT_EQ(second.pid, 4242);
  EXPECT_EQ(second.line, 2u);
  EXPECT_GT(first.steady_ns, 0);
  EXPECT_LE(first.steady_ns, second.steady_ns);
  EXPECT_GT(first.wall_us, 1'600'000'000'000'000) << "microseconds since the epoch";
}

TEST(LedgerTest, TimestampsComeFromTheInjectedClock) {
  TempDir dir;
  ManualClock clock;
  LedgerWriter writer(ledger_path(dir.path(), "w"), clock);
  const LedgerEntry first = writer.append(order("a"));
  clock.advance(std::chrono::milliseconds(5));
  const LedgerEntry second = writer.append(order("b"));
  EXPECT_EQ(second.steady_ns - first.steady_ns, 5'000'000);
  EXPECT_EQ(second.wall_us - first.wall_us, 5'000);
}

TEST(LedgerTest, AppendingReopensWithoutLosingEarlierLines) {
  TempDir dir;
  const fs::path file = ledger_path(dir.path(), "w");
  LedgerWriter(file).append(order("a"));
  LedgerWriter(file).append(order("b"));
  const LedgerContents contents = read_ledger(file);
  ASSERT_EQ(contents.entries.size(), 2u);
  EXPECT_EQ(contents.entries[1].op_id, "b");
}

TEST(LedgerTest, MissingDirectoryThrowsStoreUnavailableNamingTheFile) {
  TempDir dir;
  const fs::path file = dir.path() / "no-such-dir" / "w.ledger";
  try {
    LedgerWriter writer(file);
    FAIL() << "expected StoreUnavailable";
  } catch (const StoreUnavailable& error) {
    EXPECT_THAT(error.what(), HasSubstr(file.string()));
  }
}

TEST(LedgerTest, TornLastLineIsSkippedAndCounted) {
  TempDir dir;
  const fs::path file = ledger_path(dir.path(), "w");
  LedgerWriter(file).append(order("a"));
  LedgerWriter(file).append(order("b"));
  append_raw(file, R"({"op":"c","token":1,"wor)");  // a crash mid-write

  const LedgerContents contents = read_ledger(file);
  EXPECT_TRUE(contents.errors.empty()) << contents.errors.front();
  ASSERT_EQ(contents.entries.size(), 2u);
  EXPECT_THAT(contents.torn_lines, ::testing::ElementsAre(file.string() + ":3"));
}

TEST(LedgerTest, WholeJsonWithoutItsNewlineIsStillTorn) {
  TempDir dir;
  const fs::path file = ledger_path(dir.path(), "w");
  LedgerWriter(file).append(order("a"));
  std::string line = slurp(file);
  line.pop_back();
  append_raw(file, line);  // the same entry again, newline missing

  const LedgerContents contents = read_ledger(file);
  EXPECT_EQ(contents.entries.size(), 1u);
  EXPECT_EQ(contents.torn_lines.size(), 1u);
}

TEST(LedgerTest, MalformedMiddleLineIsAnErrorNamingFileAndLine) {
  TempDir dir;
  const fs::path file = ledger_path(dir.path(), "w");
  LedgerWriter(file).append(order("a"));
  append_raw(file, "this is not an entry\n");
  append_raw(file, R"({"op":"x","token":1})"
                   "\n");  // fields missing
  LedgerWriter(file).append(order("b"));

  const LedgerContents contents = read_ledger(file);
  ASSERT_EQ(contents.errors.size(), 2u);
  EXPECT_THAT(contents.errors[0], HasSubstr(file.string() + ":2:"));
  EXPECT_THAT(contents.errors[1], HasSubstr(file.string() + ":3:"));
  EXPECT_TRUE(contents.torn_lines.empty());
  ASSERT_EQ(contents.entries.size(), 2u);
  EXPECT_EQ(contents.entries[1].line, 4u);
}

TEST(LedgerTest, WriterCutsOffATornTailLeftByACrashedWriter) {
  TempDir dir;
  const fs::path file = ledger_path(dir.path(), "w");
  LedgerWriter(file).append(order("a"));
  const std::string fragment = R"({"op":"b","tok)";
  append_raw(file, fragment);

  LedgerWriter restarted(file);
  EXPECT_EQ(restarted.torn_bytes_discarded(), fragment.size());
  restarted.append(order("c"));
  const LedgerContents contents = read_ledger(file);
  EXPECT_TRUE(contents.errors.empty());
  EXPECT_TRUE(contents.torn_lines.empty());
  ASSERT_EQ(contents.entries.size(), 2u);
  EXPECT_EQ(contents.entries[1].op_id, "c");
}

TEST(LedgerTest, ReadLedgersReadsEveryLedgerFileInNameOrder) {
  TempDir dir;
  LedgerWriter(ledger_path(dir.path(), "b")).append(order("from-b"));
  LedgerWriter(ledger_path(dir.path(), "a")).append(order("from-a"));
  append_raw(dir.path() / "worker.log", "not a ledger\n");

  const LedgerContents contents = read_ledgers(dir.path());
  EXPECT_EQ(contents.files, 2u);
  EXPECT_TRUE(contents.errors.empty());
  ASSERT_EQ(contents.entries.size(), 2u);
  EXPECT_EQ(contents.entries[0].op_id, "from-a");
  EXPECT_EQ(contents.entries[1].op_id, "from-b");
}

TEST(LedgerTest, ReadLedgersOfAMissingDirectoryIsAnError) {
  TempDir dir;
  const LedgerContents contents = read_ledgers(dir.path() / "missing");
  ASSERT_EQ(contents.errors.size(), 1u);
  EXPECT_THAT(contents.errors[0], HasSubstr("missing"));
}

TEST(LedgerTest, ForkedProcessesAppendingToTheirOwnFilesLoseNothing) {
  TempDir dir;
  constexpr int kProcesses = 4;
  constexpr int kEach = 50;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      int status = 0;
      try {
        const std::string worker = "w" + std::to_string(p);
        LedgerWriter writer(ledger_path(dir.path(), worker + "-" + std::to_string(::getpid())));
        for (int i = 0; i < kEach; ++i) {
          writer.append(order("order-" + std::to_string(p * kEach + i), 1, worker));
        }
      } catch (...) {
        status = 1;
      }
      ::_exit(status);
    }
    children.push_back(child);
  }
  for (const pid_t child : children) {
    int status = -1;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }

  const LedgerContents contents = read_ledgers(dir.path());
  EXPECT_EQ(contents.files, static_cast<std::size_t>(kProcesses));
  EXPECT_TRUE(contents.errors.empty());
  EXPECT_TRUE(contents.torn_lines.empty());
  const CheckReport report =
      check_exactly_once(numbered_op_ids("order-%d", kProcesses * kEach), contents);
  EXPECT_TRUE(report.ok()) << report.table();
  EXPECT_EQ(report.executed_once, static_cast<std::size_t>(kProcesses * kEach));
}

TEST(LedgerTest, ThreadsAppendingToOneFileWriteWholeLines) {
  TempDir dir;
  constexpr int kThreads = 8;
  constexpr int kEach = 40;
  // A long op id, so that interleaved writes could not go unnoticed.
  const std::string padding(300, 'x');
  const fs::path shared_file = ledger_path(dir.path(), "shared");
  const fs::path separate_file = ledger_path(dir.path(), "separate");
  LedgerWriter shared(shared_file);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // One writer shared by all threads, and one writer per thread on a
      // second file (separate descriptors, relying on O_APPEND).
      LedgerWriter own(separate_file);
      for (int i = 0; i < kEach; ++i) {
        const std::string op = fmt::format("{}-{}-{}", padding, t, i);
        shared.append(order(op, 1, fmt::format("t{}", t)));
        own.append(order(op, 1, fmt::format("t{}", t)));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  for (const fs::path& file : {shared_file, separate_file}) {
    const LedgerContents contents = read_ledger(file);
    EXPECT_TRUE(contents.errors.empty()) << file << ": " << contents.errors.front();
    EXPECT_TRUE(contents.torn_lines.empty()) << file;
    std::set<std::string> ops;
    for (const LedgerEntry& entry : contents.entries) ops.insert(entry.op_id);
    EXPECT_EQ(ops.size(), static_cast<std::size_t>(kThreads * kEach)) << file;
  }
  std::set<std::uint64_t> sequences;
  for (const LedgerEntry& entry : read_ledger(shared_file).entries) {
    sequences.insert(entry.sequence);
  }
  EXPECT_EQ(sequences.size(), static_cast<std::size_t>(kThreads * kEach));
}

// ---- Checker ------------------------------------------------------------

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

}  // namespace
}  // namespace prodsafe::chaos
