// Interleavings and inputs that an adversarial review found breaking
// exactly-once, losing a result or breaking a documented guarantee; each test
// failed before its fix.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include "commit_journal.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/idempotency/in_memory_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "store_harness.hpp"
#include "support/failing_effect_store.hpp"
#include "support/log_capture.hpp"

namespace prodsafe::idempotency {
namespace {

using namespace std::chrono_literals;
using prodsafe::testing::eventually;
using prodsafe::testing::FailingEffectStore;
using prodsafe::testing::TempDir;

// A log sink that holds the logging thread at the first message containing
// `marker` until release(): the seam that forces an interleaving which
// otherwise needs a preemption at that point. No lock is held while it
// waits, so other threads keep logging.
class GateSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  explicit GateSink(std::string marker) : marker_(std::move(marker)) {}
  bool wait_reached(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [this] { return reached_; });
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      released_ = true;
    }
    changed_.notify_all();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    const std::string_view text(message.payload.data(), message.payload.size());
    if (text.find(marker_) == std::string_view::npos) return;
    std::unique_lock lock(mutex_);
    if (reached_) return;
    reached_ = true;
    changed_.notify_all();
    changed_.wait_for(lock, 10s, [this] { return released_; });
  }
  void flush_() override {}

 private:
  const std::string marker_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool reached_ = false;
  bool released_ = false;
};

struct InstalledLogger {
  explicit InstalledLogger(std::shared_ptr<spdlog::sinks::sink> sink) {
    auto logger = std::make_shared<spdlog::logger>(kLoggerName, std::move(sink));
    logger->set_level(spdlog::level::trace);
    set_logger(std::move(logger));
  }
  ~InstalledLogger() { set_logger(nullptr); }
};

// journal() appended the entry (visible to flush_journal) before it
// registered the entry's lease renewal. A flush in between (any other call of
// this process, or the background thread) committed the entry and forgot its
// renewal, which did not exist yet; the renewal registered next was then never
// forgotten. It renewed a completed record for the life of the process and,
// once the record expired (or was evicted or cleared), wrote it anew as
// in_progress and kept it alive: the key answered AlreadyInProgress forever,
// and recovered (ran again) once the process exited.
TEST(ReviewJournalLeaseTest, AResultCommittedBeforeItsRenewalIsRegisteredLeavesNoRenewalBehind) {
  TempDir dir;
  auto store = std::make_shared<FailingEffectStore>(std::make_shared<InMemoryEffectStore>());
  constexpr auto kLease = 90ms;
  constexpr auto kTtl = 300ms;
  SideEffectWrapper wrapper(store, {.ttl = kTtl,
                                    .lease = kLease,
                                    .commit_attempts = 1,
                                    .commit_retry_delay = 1ms,
                                    .journal_directory = dir.path().string(),
                                    .journal_flush_interval = std::chrono::hours(1),
                                    .journal_scan_interval = 0ms});
  const std::string key = "effect:ORDER_PLACEMENT:race";
  auto gate = std::make_shared<GateSink>("is journaled in");
  {
    InstalledLogger installed(gate);
    store->fail_commits = 1;
    std::thread caller([&] {
      const auto outcome = wrapper.execute_once(EffectType::ORDER_PLACEMENT, "race",
                                                [] { return std::string("filled"); });
      EXPECT_TRUE(outcome.commit_pending);
    });
    // The caller has journaled the result and not yet registered its renewal:
    // another thread's call flushes the journal now.
    ASSERT_TRUE(gate->wait_reached(5s));
    EXPECT_EQ(wrapper.flush_journal(), 0u);
    gate->release();
    caller.join();
  }
  ASSERT_EQ(store->inspect(key)->state, "completed");
  // The record ends with its TTL. Nothing may hold the key after that.
  std::this_thread::sleep_for(kTtl + 3 * kLease);
  const auto record = store->inspect(key);
  EXPECT_FALSE(record.has_value() && record->state == "in_progress")
      << "a renewal that outlived its commit wrote the completed, expired record anew as "
         "in_progress and keeps it alive";
  EXPECT_NE(store->claim(key, "", kLease, kTtl).status, ClaimStatus::kInProgress);
}

// A result waiting in this
// process's journal must answer the next call instead of a recovery. A caller
// already polling (InProgressPolicy::kWait) never looked at the journal again:
// without lease renewals it recovered the lease of this process's own
// journaled run and ran the effect a second time.
TEST(ReviewJournalLeaseTest, AWaitingCallerIsAnsweredByAResultJournaledWhileItWaits) {
  TempDir dir;
  auto store = std::make_shared<FailingEffectStore>(std::make_shared<InMemoryEffectStore>());
  SideEffectWrapper wrapper(store, {.ttl = 10s,
                                    .lease = 200ms,
                                    .renew_leases = false,
                                    .in_progress = InProgressPolicy::kWait,
                                    .wait_timeout = 3s,
                                    .commit_attempts = 1,
                                    .commit_retry_delay = 1ms,
                                    .journal_directory = dir.path().string(),
                                    .journal_flush_interval = std::chrono::hours(1),
                                    .journal_scan_interval = 0ms});
  std::atomic<int> runs{0};
  std::atomic<bool> started{false};
  store->fail_commits = -1;  // the store refuses commits until further notice
  std::thread first([&] {
    const auto outcome = wrapper.execute_once(EffectType::ORDER_PLACEMENT, "w", [&] {
      ++runs;
      started = true;
      std::this_thread::sleep_for(50ms);
      return 1;
    });
    EXPECT_TRUE(outcome.commit_pending);
  });
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  try {
    const auto second = wrapper.execute_once(EffectType::ORDER_PLACEMENT, "w", [&] {
      ++runs;
      return 2;
    });
    EXPECT_EQ(second.result, 1);
  } catch (const AlreadyInProgress&) {
    // Acceptable: it did not run the effect again.
  }
  first.join();
  EXPECT_EQ(runs.load(), 1) << "the effect ran again while its result waited in the journal";
  store->fail_commits = 0;
}

template <class Harness>
class ReviewStoreTest : public ::testing::Test {
 protected:
  Harness harness;
  EffectStore& store() { return *harness.store(); }
};
TYPED_TEST_SUITE(ReviewStoreTest, prodsafe::testing::Harnesses, prodsafe::testing::HarnessNames);

// Holder's comment ("the token only grows, also across the loss of
// the record"). A renewal writes a vanished record anew with its holder's
// (older) token; a recovery then issued that token + 1, at or below a token
// the store had already issued to a later claim of the key.
TYPED_TEST(ReviewStoreTest, ATokenIssuedAfterARenewalWroteAnOldClaimAnewStillGrows) {
  constexpr auto kTtl = 60s;
  const auto lease = TypeParam::lease();
  const Claim a = this->store().claim("effect:T:1", "", lease, kTtl);
  ASSERT_TRUE(this->store().clear("effect:T:1"));  // evicted under A
  const Claim b = this->store().claim("effect:T:1", "", lease, kTtl);
  ASSERT_EQ(b.status, ClaimStatus::kClaimed);
  ASSERT_GT(b.token, a.token);
  ASSERT_TRUE(this->store().clear("effect:T:1"));                               // evicted under B
  ASSERT_TRUE(this->store().renew("effect:T:1", a.holder(), lease, kTtl, ""));  // A's comes back
  this->harness.advance(lease + 50ms);                                          // A dies
  const Claim c = this->store().claim("effect:T:1", "", lease, kTtl);
  ASSERT_EQ(c.status, ClaimStatus::kRecovered);
  EXPECT_GT(c.token, b.token) << "a fencing token went back: " << c.token << " after " << b.token;
}

// "renewal keeps the record alive (TTL)". The existing tests renewed
// until the record had expired, where writing it anew hid a renewal that did
// not extend it: between its expiry and the next renewal (lease/3), anyone
// could claim the key beside the live effect.
TYPED_TEST(ReviewStoreTest, ARenewalExtendsTheRecordsLifeAtOnce) {
  const auto lease = TypeParam::lease();
  const auto ttl = lease * 4;
  const Claim claim = this->store().claim("effect:T:1", "", lease, ttl);
  this->harness.advance(lease * 2);
  ASSERT_TRUE(this->store().renew("effect:T:1", claim.holder(), lease, ttl, ""));
  const auto record = this->store().inspect("effect:T:1");
  ASSERT_TRUE(record);
  EXPECT_GT(record->ttl_remaining, ttl - lease) << "the renewal did not extend the record's TTL";
}

// Tokens "seeded from server time in microseconds so they grow across
// record loss". A record lost and claimed again within the same millisecond
// must still get a higher token.
TYPED_TEST(ReviewStoreTest, TokensGrowAcrossRecordsLostWithinAMillisecond) {
  std::uint64_t last = 0;
  for (int i = 0; i < 20; ++i) {
    const Claim claim = this->store().claim("effect:T:1", "", TypeParam::lease(), 60s);
    ASSERT_EQ(claim.status, ClaimStatus::kClaimed);
    EXPECT_GT(claim.token, last) << "claim " << i;
    last = claim.token;
    ASSERT_TRUE(this->store().clear("effect:T:1"));
  }
}

template <class Harness>
class ReviewWrapperTest : public ::testing::Test {
 protected:
  Harness harness;
};
TYPED_TEST_SUITE(ReviewWrapperTest, prodsafe::testing::Harnesses, prodsafe::testing::HarnessNames);

// "the record's fingerprint". A recovery by a call without a
// fingerprint keeps the record's one, but when the record vanished under the
// effect, the commit wrote it anew with the caller's (empty) fingerprint: the
// next request with another fingerprint got this one's result instead of
// Conflict.
TYPED_TEST(ReviewWrapperTest, ARecordWrittenAnewAtCommitKeepsTheStoredFingerprint) {
  auto store = this->harness.store();
  WrapperOptions options = this->harness.wrapper_options();
  options.lease = TypeParam::lease();
  SideEffectWrapper wrapper(store, options);
  const std::string key = "effect:ORDER_PLACEMENT:fp";
  EXPECT_THROW(
      wrapper.execute_once(EffectType::ORDER_PLACEMENT, "fp",
                           []() -> int { throw std::runtime_error("the exchange hung up"); },
                           {.fingerprint = "qty=1"}),
      std::runtime_error);
  const auto retried = wrapper.execute_once(EffectType::ORDER_PLACEMENT, "fp", [&] {
    store->clear(key);  // evicted while the effect runs
    return 1;
  });
  EXPECT_TRUE(retried.recovered);
  ASSERT_TRUE(store->inspect(key));
  EXPECT_EQ(store->inspect(key)->fingerprint, "qty=1");
  EXPECT_THROW(wrapper.execute_once(EffectType::ORDER_PLACEMENT, "fp", [] { return 2; },
                                    {.fingerprint = "qty=2"}),
               Conflict);
}

// "the result cache stores the stored fingerprint". The existing test
// filled the cache from a call that carried the fingerprint, so a cache that
// kept the caller's fingerprint passed it. A call without one that meets a
// record written by another worker (or recovered from one) must cache the
// record's fingerprint, or a later request with another fingerprint is
// answered from the cache instead of getting Conflict.
TYPED_TEST(ReviewWrapperTest, TheCacheKeepsTheFingerprintOfARecordWrittenByAnotherWorker) {
  WrapperOptions options = this->harness.wrapper_options();
  options.lease = TypeParam::lease();
  SideEffectWrapper writer(this->harness.store(), options);
  options.result_cache_size = 16;
  SideEffectWrapper reader(this->harness.store(), options);
  const auto place = [] { return 1; };
  writer.execute_once(EffectType::ORDER_PLACEMENT, "c", place, {.fingerprint = "qty=1"});
  EXPECT_FALSE(reader.execute_once(EffectType::ORDER_PLACEMENT, "c", place).executed);
  EXPECT_THROW(
      reader.execute_once(EffectType::ORDER_PLACEMENT, "c", place, {.fingerprint = "qty=2"}),
      Conflict);
}

TYPED_TEST(ReviewWrapperTest, TheCacheKeepsTheFingerprintOfARecoveredRecord) {
  WrapperOptions options = this->harness.wrapper_options();
  options.lease = TypeParam::lease();
  options.result_cache_size = 16;
  SideEffectWrapper wrapper(this->harness.store(), options);
  EXPECT_THROW(wrapper.execute_once(EffectType::ORDER_PLACEMENT, "r",
                                    []() -> int { throw std::runtime_error("hung up"); },
                                    {.fingerprint = "qty=1"}),
               std::runtime_error);
  EXPECT_TRUE(wrapper.execute_once(EffectType::ORDER_PLACEMENT, "r", [] { return 1; }).recovered);
  EXPECT_THROW(wrapper.execute_once(EffectType::ORDER_PLACEMENT, "r", [] { return 2; },
                                    {.fingerprint = "qty=2"}),
               Conflict);
}

// "never outlives the record", for the entry a run caches (the
// existing test covered only the entry a duplicate caches).
TYPED_TEST(ReviewWrapperTest, TheEntryARunCachesNeverOutlivesItsRecord) {
  WrapperOptions options = this->harness.wrapper_options();
  options.lease = TypeParam::lease();
  options.ttl = 1000ms;
  options.result_cache_size = 16;
  SideEffectWrapper wrapper(this->harness.store(), options);
  int runs = 0;
  const auto place = [&runs] { return ++runs; };
  wrapper.execute_once(EffectType::ORDER_PLACEMENT, "t", place);
  this->harness.advance(1100ms);  // the record expired
  const auto late = wrapper.execute_once(EffectType::ORDER_PLACEMENT, "t", place);
  EXPECT_FALSE(late.from_cache) << "answered from a cache entry that outlived its record";
  EXPECT_EQ(runs, 2);
}

// A write cut short (disk full, quota, file size limit) left a partial
// line without its newline; the next entry, acknowledged as journaled, was
// appended to it and the whole line was skipped as damaged when adopted.
TEST(ReviewJournalFileTest, AnEntryWrittenAfterATornWriteIsStillReadable) {
  TempDir dir;
  CommitJournal journal(dir.path(), "redis 127.0.0.1:6379 db 0 prefix ");
  auto entry = [](std::string key, std::uint64_t token, std::string result) {
    return JournalEntry{std::move(key),   {token, "holder"}, 60s, 30s, FinalState::kCompleted, "",
                        std::move(result)};
  };
  journal.append(entry("effect:A:1", 1, "one"));
  const auto size = std::filesystem::file_size(journal.file());
  struct rlimit saved {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto previous = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limited = saved;
  limited.rlim_cur = size + 40;  // the next line is cut after 40 bytes
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  // A full disk is a local failure: an IoError, never a retryable StoreUnavailable.
  try {
    journal.append(entry("effect:A:2", 2, std::string(200, 'x')));
    ADD_FAILURE() << "the cut-short write was acknowledged";
  } catch (const IoError& error) {
    EXPECT_FALSE(error.retryable()) << error.what();
  } catch (const std::exception& error) {
    ADD_FAILURE() << "not an IoError: " << error.what();
  }
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  ::signal(SIGXFSZ, previous);
  journal.append(entry("effect:A:3", 3, "three"));  // space again: acknowledged
  const auto contents = read_journal(journal.file());
  ASSERT_EQ(contents.pending.size(), 2u) << "the entry after the torn write was lost";
  EXPECT_EQ(contents.pending[1].result, "three");
  EXPECT_EQ(contents.damaged_lines, 1u);
}

// Damaged lines "skipped, counted, logged" - through the wrapper
// (stats().journal_damaged_lines and the log), not only read_journal().
TEST(ReviewJournalFileTest, AWrapperCountsAndLogsTheDamagedLinesOfAnAdoptedJournal) {
  TempDir dir;
  auto store = std::make_shared<InMemoryEffectStore>();
  std::filesystem::path orphan;
  {
    CommitJournal dead(dir.path(), store->identity());
    for (std::uint64_t token : {1, 2}) {
      dead.append(JournalEntry{"effect:A:" + std::to_string(token),
                               {token, "h"},
                               60s,
                               30s,
                               FinalState::kCompleted,
                               "",
                               "result"});
    }
    orphan = dead.file();
  }
  {
    std::fstream file(orphan, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(-3, std::ios::end);  // inside the last line's result
    file.put('0');
  }
  prodsafe::testing::LogCapture logs;
  SideEffectWrapper wrapper(store, {.journal_directory = dir.path().string()});
  EXPECT_EQ(wrapper.stats().journal_damaged_lines, 1u);
  EXPECT_NE(logs.text().find("damaged line"), std::string::npos) << logs.text();
  EXPECT_EQ(store->inspect("effect:A:1")->result, "result");
  EXPECT_FALSE(store->inspect("effect:A:2"));
}

// "foreign-owned ... refused". No test owned a directory or file by
// another user (needs root to chown).
TEST(ReviewJournalFileTest, ADirectoryOrFileOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  constexpr uid_t kOther = 65534;
  {
    TempDir dir;
    ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
    ASSERT_EQ(::chown(dir.path().c_str(), kOther, kOther), 0);
    EXPECT_THROW(CommitJournal(dir.path(), "s"), InvalidArgument);
  }
  TempDir dir;
  std::filesystem::path orphan;
  {
    CommitJournal owner(dir.path(), "s");
    // Filled field by field: from the aggregate initializer, GCC 12 at -O3
    // warns that holder.id "may be used uninitialized" (a false positive).
    JournalEntry entry;
    entry.key = "effect:A:1";
    entry.holder = {1, "h"};
    entry.ttl = 60s;
    entry.lease = 30s;
    entry.result = "r";
    owner.append(entry);
    orphan = owner.file();
  }
  ASSERT_EQ(::chown(orphan.c_str(), kOther, kOther), 0);
  CommitJournal heir(dir.path(), "s");
  EXPECT_EQ(heir.pending_count(), 0u) << "adopted a journal written by another user";
}

// fork() after a wrapper was made (a pre-forking server): the child has the
// wrapper but none of its threads. Its journaled results were never committed
// in the background and its running effects' leases were never renewed, so
// another worker recovered (re-ran) a live effect.
// A wrapper's threads (lease renewal, journal flushing) do not follow it into
// a fork()ed child: a child using its parent's wrapper would run effects whose
// leases nobody renews, and its destructor would join threads that do not
// exist and empty the parent's journal. The child is told to make its own
// wrapper; destroying the inherited one touches nothing of the parent's.
TEST(ReviewForkTest, AForkedChildIsToldToMakeItsOwnWrapperAndLeavesTheParentsAlone) {
  TempDir dir;
  auto store = std::make_shared<FailingEffectStore>(std::make_shared<InMemoryEffectStore>());
  auto wrapper = std::make_unique<SideEffectWrapper>(
      store, WrapperOptions{.ttl = 10s,
                            .lease = 150ms,
                            .commit_attempts = 1,
                            .commit_retry_delay = 1ms,
                            .journal_directory = dir.path().string(),
                            .journal_flush_interval = 1h});
  // A journaled result waits in the parent's journal file.
  store->fail_commits = -1;
  ASSERT_TRUE(wrapper->execute_once(EffectType::ORDER_PLACEMENT, "parent", [] { return 1; })
                  .commit_pending);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::alarm(10);
    int failures = 0;
    int runs = 0;
    try {
      wrapper->execute_once(EffectType::ORDER_PLACEMENT, "child", [&] { return ++runs; });
      failures |= 1;
    } catch (const InvalidArgument& error) {
      if (std::string(error.what()).find("fork") == std::string::npos) failures |= 2;
    }
    if (runs != 0) failures |= 4;
    wrapper.reset();  // must neither hang nor touch the parent's journal
    ::_exit(failures);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child hung or crashed (signal "
                                 << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << ")";
  EXPECT_EQ(WEXITSTATUS(status) & 1, 0) << "the child ran an effect through its parent's wrapper";
  EXPECT_EQ(WEXITSTATUS(status) & 2, 0) << "the error does not say what to do";
  EXPECT_EQ(WEXITSTATUS(status) & 4, 0) << "the effect ran";
  EXPECT_EQ(wrapper->journal_pending(), 1u);
  store->fail_commits = 0;
  EXPECT_EQ(wrapper->flush_journal(), 0u) << "the parent's journal survived the child";
  EXPECT_EQ(store->inspect("effect:ORDER_PLACEMENT:parent")->state, "completed");
}

}  // namespace
}  // namespace prodsafe::idempotency
