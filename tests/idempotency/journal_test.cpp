// The commit journal on disk: durability, torn lines, orphan adoption.
#include "commit_journal.hpp"

#include <fstream>

#include <gtest/gtest.h>

#include "prodsafe/idempotency/in_memory_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "store_harness.hpp"
#include "support/failing_effect_store.hpp"

namespace prodsafe::idempotency {
namespace {

using namespace std::chrono_literals;
using prodsafe::testing::TempDir;

JournalEntry entry(std::string key, std::uint64_t token, std::string result) {
  return JournalEntry{std::move(key), token, 60s, "fp", std::move(result)};
}

TEST(JournalTest, AppendedEntriesAreOnDiskAndDoneOnesAreNot) {
  TempDir dir;
  CommitJournal journal(dir.path());
  EXPECT_TRUE(journal.file().empty()) << "no file until needed";
  journal.append(entry("effect:A:1", 1, std::string("bin\0\n ary", 9)));
  journal.append(entry("effect:A:2", 3, ""));
  auto on_disk = read_journal(journal.file());
  ASSERT_EQ(on_disk.size(), 2u);
  EXPECT_EQ(on_disk[0].result, std::string("bin\0\n ary", 9));
  EXPECT_EQ(on_disk[1].token, 3u);
  EXPECT_EQ(on_disk[1].ttl, 60s);
  journal.mark_done(on_disk[0]);
  EXPECT_EQ(read_journal(journal.file()).size(), 1u);
  EXPECT_EQ(journal.pending_count(), 1u);
  journal.mark_done(on_disk[1]);
  EXPECT_EQ(std::filesystem::file_size(journal.file()), 0u) << "emptied when nothing is pending";
}

TEST(JournalTest, TornLastLineIsIgnored) {
  TempDir dir;
  const auto file = dir.path() / "x.journal";
  {
    CommitJournal journal(dir.path() / "sub");
    journal.append(entry("effect:A:1", 1, "r"));
    std::filesystem::copy_file(journal.file(), file);
  }
  std::ofstream(file, std::ios::app) << "put 2 600 x6566 x";  // cut mid-line
  EXPECT_EQ(read_journal(file).size(), 1u);
}

TEST(JournalTest, LiveJournalsAreNotAdoptedDeadOnesAre) {
  TempDir dir;
  auto owner = std::make_unique<CommitJournal>(dir.path());
  owner->append(entry("effect:A:1", 1, "r"));
  {
    CommitJournal other(dir.path());
    EXPECT_EQ(other.pending_count(), 0u) << "a locked journal belongs to a live process";
  }
  owner.reset();  // the owner "dies" with an entry pending
  CommitJournal heir(dir.path());
  ASSERT_EQ(heir.pending_count(), 1u);
  EXPECT_EQ(heir.pending()[0].key, "effect:A:1");
  std::size_t files = 0;
  for (const auto& item : std::filesystem::directory_iterator(dir.path())) {
    files += item.path().extension() == ".journal";
  }
  EXPECT_EQ(files, 1u) << "the orphan is folded into the heir's own file";
}

TEST(JournalTest, UnwritableDirectorySaysWhatToDo) {
  CommitJournal journal("/proc/prodsafe-cannot-write-here");
  try {
    journal.append(entry("effect:A:1", 1, "r"));
    FAIL() << "no exception";
  } catch (const StoreUnavailable& error) {
    EXPECT_NE(std::string(error.what()).find("journal_directory"), std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace prodsafe::idempotency

namespace prodsafe::idempotency {
namespace {

// A result waiting in this process's journal answers later calls for its key:
// claiming instead would meet this process's own lease and, once it ended,
// run the effect again (found by the chaos suite's analysis of kill_redis).
TEST(JournalAnswersTest, AJournaledResultAnswersTheNextCallInsteadOfARecovery) {
  TempDir dir;
  ManualClock clock;
  auto store = std::make_shared<prodsafe::testing::FailingEffectStore>(
      std::make_shared<InMemoryEffectStore>(&clock));
  SideEffectWrapper wrapper(store, {.lease = 1s,
                                    .renew_leases = false,
                                    .in_progress = InProgressPolicy::kWait,
                                    .commit_attempts = 3,
                                    .journal_directory = dir.path().string(),
                                    .clock = &clock});
  int runs = 0;
  const auto effect = [&runs] { return ++runs; };
  store->fail_commits = 4;  // the three commit attempts, then the next call's flush
  const auto first = wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o-1", effect);
  ASSERT_TRUE(first.commit_pending);
  const auto second = wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o-1", effect);
  EXPECT_EQ(runs, 1) << "the effect ran again while its result waited in the journal";
  EXPECT_FALSE(second.executed);
  EXPECT_TRUE(second.commit_pending);
  EXPECT_EQ(second.result, 1);
  EXPECT_EQ(second.fencing_token, first.fencing_token);
  // Once the store answers, the journal is committed and the store answers.
  const auto third = wrapper.execute_once(EffectType::ORDER_PLACEMENT, "o-1", effect);
  EXPECT_EQ(runs, 1);
  EXPECT_FALSE(third.commit_pending);
  EXPECT_EQ(third.result, 1);
  EXPECT_EQ(wrapper.journal_pending(), 0U);
}

}  // namespace
}  // namespace prodsafe::idempotency
