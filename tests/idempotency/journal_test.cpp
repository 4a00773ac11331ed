// The commit journal on disk: durability, torn lines, orphan adoption.
#include "commit_journal.hpp"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "prodsafe/idempotency/in_memory_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "store_harness.hpp"
#include "support/failing_effect_store.hpp"
#include "support/log_capture.hpp"

namespace prodsafe::idempotency {
namespace {

using namespace std::chrono_literals;
using prodsafe::testing::TempDir;

constexpr const char* kStore = "redis 127.0.0.1:6379 db 0 prefix ";

JournalEntry entry(std::string key, std::uint64_t token, std::string result) {
  return JournalEntry{std::move(key),
                      {token, "holder-" + std::to_string(token)},
                      60s,
                      30s,
                      FinalState::kCompleted,
                      "fp",
                      std::move(result)};
}

std::size_t journal_files(const std::filesystem::path& directory) {
  std::size_t files = 0;
  for (const auto& item : std::filesystem::directory_iterator(directory)) {
    files += item.path().extension() == ".journal";
  }
  return files;
}

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(JournalTest, AppendedEntriesAreOnDiskAndDoneOnesAreNot) {
  TempDir dir;
  CommitJournal journal(dir.path(), kStore);
  EXPECT_TRUE(journal.file().empty()) << "no file until needed";
  journal.append(entry("effect:A:1", 1, std::string("bin\0\n ary", 9)));
  journal.append(entry("effect:A:2", 3, ""));
  auto on_disk = read_journal(journal.file());
  EXPECT_EQ(on_disk.store, kStore);
  EXPECT_EQ(on_disk.damaged_lines, 0u);
  ASSERT_EQ(on_disk.pending.size(), 2u);
  EXPECT_EQ(on_disk.pending[0].result, std::string("bin\0\n ary", 9));
  EXPECT_EQ(on_disk.pending[0].holder.id, "holder-1");
  EXPECT_EQ(on_disk.pending[1].holder.token, 3u);
  EXPECT_EQ(on_disk.pending[1].ttl, 60s);
  EXPECT_EQ(on_disk.pending[1].lease, 30s);
  journal.mark_done(on_disk.pending[0]);
  EXPECT_EQ(read_journal(journal.file()).pending.size(), 1u);
  EXPECT_EQ(journal.pending_count(), 1u);
  journal.mark_done(on_disk.pending[1]);
  const auto emptied = read_journal(journal.file());
  EXPECT_TRUE(emptied.pending.empty());
  EXPECT_EQ(emptied.store, kStore) << "emptied down to the line naming its store";
  EXPECT_LT(std::filesystem::file_size(journal.file()), 100u);
}

TEST(JournalTest, TornLastLineIsIgnored) {
  TempDir dir;
  const auto file = dir.path() / "x.journal";
  {
    CommitJournal journal(dir.path() / "sub", kStore);
    journal.append(entry("effect:A:1", 1, "r"));
    std::filesystem::copy_file(journal.file(), file);
  }
  std::ofstream(file, std::ios::app) << "1234abcd 40 put 2 x 600";  // cut mid-line
  const auto contents = read_journal(file);
  EXPECT_EQ(contents.pending.size(), 1u);
  EXPECT_EQ(contents.damaged_lines, 1u);
}

// A line cut inside the hex-encoded result used to parse as
// a shorter result, which would then be committed as the effect's result.
TEST(JournalTest, ALineCutInsideItsResultIsNeverReadAsAShorterResult) {
  TempDir dir;
  const auto file = dir.path() / "cut.journal";
  {
    CommitJournal journal(dir.path() / "sub", kStore);
    journal.append(entry("effect:A:1", 1, "first"));
    journal.append(entry("effect:A:2", 2, "a result long enough to be cut in its middle"));
    std::filesystem::copy_file(journal.file(), file);
  }
  std::string text = read_text(file);
  // Cut the last line an even number of hex digits into its result.
  const std::size_t result_start = text.rfind(" x") + 2;
  text.resize(result_start + 20);
  std::ofstream(file, std::ios::trunc | std::ios::binary) << text;
  const auto contents = read_journal(file);
  ASSERT_EQ(contents.pending.size(), 1u);
  EXPECT_EQ(contents.pending[0].result, "first");
  EXPECT_EQ(contents.damaged_lines, 1u);
}

TEST(JournalTest, AFlippedByteAnywhereInALineIsCaught) {
  TempDir dir;
  const auto file = dir.path() / "flipped.journal";
  {
    CommitJournal journal(dir.path() / "sub", kStore);
    journal.append(entry("effect:A:1", 1, "result-9"));
    std::filesystem::copy_file(journal.file(), file);
  }
  const std::string original = read_text(file);
  const std::size_t put = original.find("put ");
  ASSERT_NE(put, std::string::npos);
  // Every position of the put line, one at a time: the digit 9 of the result
  // becomes 8, a token digit changes, a word boundary moves...
  for (std::size_t i = put; i + 1 < original.size(); ++i) {
    std::string damaged = original;
    damaged[i] = damaged[i] == '8' ? '9' : '8';
    std::ofstream(file, std::ios::trunc | std::ios::binary) << damaged;
    const auto contents = read_journal(file);
    EXPECT_TRUE(contents.pending.empty()) << "byte " << i << " was changed and still accepted";
    EXPECT_EQ(contents.damaged_lines, 1u) << "byte " << i;
  }
}

TEST(JournalTest, LiveJournalsAreNotAdoptedDeadOnesAre) {
  TempDir dir;
  auto owner = std::make_unique<CommitJournal>(dir.path(), kStore);
  owner->append(entry("effect:A:1", 1, "r"));
  {
    CommitJournal other(dir.path(), kStore);
    EXPECT_EQ(other.pending_count(), 0u) << "a locked journal belongs to a live process";
  }
  owner.reset();  // the owner "dies" with an entry pending
  CommitJournal heir(dir.path(), kStore);
  ASSERT_EQ(heir.pending_count(), 1u);
  EXPECT_EQ(heir.pending()[0].key, "effect:A:1");
  EXPECT_EQ(heir.pending()[0].holder.id, "holder-1");
  EXPECT_EQ(journal_files(dir.path()), 1u) << "the orphan is folded into the heir's own file";
}

// A journal is adopted only by a wrapper of the store it
// came from; another Redis, database or key prefix must leave it alone.
TEST(JournalTest, AnotherStoresJournalIsNotAdopted) {
  TempDir dir;
  auto owner = std::make_unique<CommitJournal>(dir.path(), kStore);
  owner->append(entry("effect:A:1", 1, "r"));
  owner.reset();
  for (const char* other :
       {"redis 127.0.0.1:6380 db 0 prefix ", "redis 127.0.0.1:6379 db 1 prefix ",
        "redis 127.0.0.1:6379 db 0 prefix staging:", "memory 1234"}) {
    CommitJournal stranger(dir.path(), other);
    EXPECT_EQ(stranger.pending_count(), 0u) << other;
    EXPECT_TRUE(stranger.adopt_orphans().empty()) << other;
  }
  CommitJournal heir(dir.path(), kStore);
  EXPECT_EQ(heir.pending_count(), 1u) << "the right store still finds it";
}

TEST(JournalTest, AJournalNamingNoStoreIsLeftAlone) {
  TempDir dir;
  std::ofstream(dir.path() / "old.journal") << "put 1 60000 x6566 x x72\n";
  prodsafe::testing::LogCapture logs;
  CommitJournal journal(dir.path(), kStore);
  EXPECT_EQ(journal.pending_count(), 0u);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "old.journal"));
  EXPECT_NE(logs.text().find("does not say which store"), std::string::npos) << logs.text();
}

// The directory and its files must be private to the user;
// anyone who can write there could make this process commit forged results.
TEST(JournalTest, ADirectoryWritableByOthersIsRefused) {
  TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms::all);  // 0777
  try {
    CommitJournal journal(dir.path(), kStore);
    FAIL() << "a world-writable journal directory was accepted";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("writable by group or others"), std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find("chmod 700"), std::string::npos) << error.what();
  }
}

TEST(JournalTest, ADirectoryMadeByTheJournalIsPrivate) {
  TempDir dir;
  const auto made = dir.path() / "journal";
  CommitJournal journal(made, kStore);
  journal.append(entry("effect:A:1", 1, "r"));
  const auto directory = std::filesystem::status(made).permissions();
  EXPECT_EQ(directory & std::filesystem::perms::all, std::filesystem::perms::owner_all);
  const auto file = std::filesystem::status(journal.file()).permissions();
  EXPECT_EQ(file & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST(JournalTest, AFileWritableByOthersIsNotAdopted) {
  TempDir dir;
  std::filesystem::path orphan;
  {
    auto owner = std::make_unique<CommitJournal>(dir.path(), kStore);
    owner->append(entry("effect:A:1", 1, "r"));
    orphan = owner->file();
  }
  std::filesystem::permissions(orphan, std::filesystem::perms::others_write,
                               std::filesystem::perm_options::add);
  prodsafe::testing::LogCapture logs;
  CommitJournal heir(dir.path(), kStore);
  EXPECT_EQ(heir.pending_count(), 0u);
  EXPECT_TRUE(std::filesystem::exists(orphan)) << "left alone for a person to look at";
  EXPECT_NE(logs.text().find("refusing to adopt"), std::string::npos) << logs.text();
}

TEST(JournalTest, TheDefaultDirectoryIsPerUser) {
  ::unsetenv("PRODSAFE_JOURNAL_DIR");
  EXPECT_EQ(default_journal_directory(),
            std::filesystem::path("/var/tmp/prodsafe-journal-" + std::to_string(::geteuid())));
  ::setenv("PRODSAFE_JOURNAL_DIR", "/somewhere/else", 1);
  EXPECT_EQ(default_journal_directory(), std::filesystem::path("/somewhere/else"));
  ::unsetenv("PRODSAFE_JOURNAL_DIR");
}

// A directory that cannot be made is a local failure (IoError), not an
// unreachable store: retrying cannot help until someone fixes the machine.
TEST(JournalTest, UnwritableDirectoryIsAnIoErrorSayingWhatToDo) {
  CommitJournal journal("/proc/prodsafe-cannot-write-here", kStore);
  try {
    journal.append(entry("effect:A:1", 1, "r"));
    FAIL() << "no exception";
  } catch (const IoError& error) {
    EXPECT_FALSE(error.retryable());
    EXPECT_NE(std::string(error.what()).find("journal_directory"), std::string::npos)
        << error.what();
  } catch (const std::exception& error) {
    FAIL() << "not an IoError: " << error.what();
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
