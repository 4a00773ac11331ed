// The chaos ledgers: fsynced append-only files, one JSON line per execution.
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

#include "chaos/history/checker.hpp"
#include "chaos/history/ledger.hpp"
#include "ledger_fixtures.hpp"
#include "prodsafe/core/error.hpp"

namespace prodsafe::chaos {
namespace {

namespace fs = std::filesystem;
using fixtures::append_raw;
using fixtures::order;
using fixtures::slurp;
using fixtures::TempDir;
using ::testing::HasSubstr;

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

// A ledger is a local file: failing to open one is a local I/O error that a
// retry does not fix, not an unreachable store.
TEST(LedgerTest, MissingDirectoryThrowsIoErrorNamingTheFile) {
  TempDir dir;
  const fs::path file = dir.path() / "no-such-dir" / "w.ledger";
  try {
    LedgerWriter writer(file);
    FAIL() << "expected IoError";
  } catch (const IoError& error) {
    EXPECT_THAT(error.what(), HasSubstr(file.string()));
    EXPECT_FALSE(error.retryable());
  } catch (const std::exception& error) {
    FAIL() << "expected IoError, got: " << error.what();
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

}  // namespace
}  // namespace prodsafe::chaos
