// The local, fsynced journal of results whose commit could not reach the
// store after the effect ran. Each journal object owns one file in a
// directory private to its user, held under flock() for the life of the
// process. It adopts the files of processes that died (their lock is gone) —
// only those whose results belong to the same store (EffectStore::identity),
// so a result is never committed into another Redis, database or key prefix.
//
// File format: one record a line, each line checksummed so that a torn or
// damaged line is skipped instead of read as a shorter value:
//   <crc32 of body, 8 hex digits> <length of body> <body>
// The first body names the store; the others put or settle an entry (hex
// keeps keys, holder ids and results binary-safe):
//   store <hex identity>
//   put <token> <hex holder id> <ttl ms> <lease ms> <state> <hex key>
//       <hex fingerprint> <hex result>
//   done <token> <hex holder id> <hex key>
//
// The directory is created 0700 and its files 0600. A directory owned by
// another user or writable by group or others is refused (InvalidArgument at
// construction: anyone who can write there could make this process commit
// forged results); so is any file in it owned by another user or writable by
// group or others (logged and left alone).
//
// Thread safety: safe for concurrent use.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "prodsafe/idempotency/effect_store.hpp"

namespace prodsafe::idempotency {

struct JournalEntry {
  std::string key;
  Holder holder{};
  std::chrono::milliseconds ttl{0};
  std::chrono::milliseconds lease{0};
  FinalState state = FinalState::kCompleted;
  std::string fingerprint;
  std::string result;  // the encoded result, or why it is unavailable
};

// What a journal file holds.
struct JournalContents {
  std::string store;                  // the store identity; empty if none was read
  std::vector<JournalEntry> pending;  // puts without a matching done
  std::size_t damaged_lines = 0;      // lines that failed their length or checksum
};

// Reads a journal file. Damaged lines are skipped, counted and logged.
[[nodiscard]] JournalContents read_journal(const std::filesystem::path& file);

// The file format itself, for tests and the fuzz target: parse_journal()
// reads a journal's text (never throws for any text: damaged lines are
// counted); the *_body() functions make the bodies above and journal_line()
// frames one as a line.
[[nodiscard]] JournalContents parse_journal(std::string_view text);
[[nodiscard]] std::string store_body(std::string_view store);
[[nodiscard]] std::string put_body(const JournalEntry& entry);
[[nodiscard]] std::string done_body(const JournalEntry& entry);
[[nodiscard]] std::string journal_line(std::string_view body);

// The default journal directory: $PRODSAFE_JOURNAL_DIR, else
// /var/tmp/prodsafe-journal-<effective uid> (/var/tmp survives reboots; the
// uid keeps users apart).
[[nodiscard]] std::filesystem::path default_journal_directory();

class CommitJournal {
 public:
  // `store` is the identity of the store the entries belong to. Throws
  // InvalidArgument when `directory` exists but is not private to this user.
  // Adopts the orphaned journals of `store` found in `directory`; creates
  // nothing until the first append (or an adoption) needs a file.
  CommitJournal(std::filesystem::path directory, std::string store);
  ~CommitJournal();
  CommitJournal(const CommitJournal&) = delete;
  CommitJournal& operator=(const CommitJournal&) = delete;

  // Appends the entry and fsyncs it. Throws IoError when the directory or the
  // file cannot be created, written or fsynced (the message names it); the
  // entry is then pending in memory only: committed by this process, lost if
  // it dies first.
  void append(const JournalEntry& entry);
  // Records that `entry` is settled; the file is emptied once nothing is
  // pending. Throws IoError, as append() does, when the file cannot be written.
  void mark_done(const JournalEntry& entry);
  // Adopts the journals of dead processes for the same store; returns the
  // entries adopted (already pending here too). Cheap when there are none.
  std::vector<JournalEntry> adopt_orphans();

  [[nodiscard]] std::vector<JournalEntry> pending() const;
  // Whether `entry` (its key and holder) is still pending.
  [[nodiscard]] bool holds(const JournalEntry& entry) const;
  // The newest pending entry for `key`, if any.
  [[nodiscard]] std::optional<JournalEntry> find(std::string_view key) const;
  [[nodiscard]] std::size_t pending_count() const noexcept { return pending_count_.load(); }
  // Damaged lines skipped in adopted files since construction.
  [[nodiscard]] std::size_t damaged_lines() const noexcept { return damaged_lines_.load(); }
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return directory_; }
  [[nodiscard]] const std::string& store() const noexcept { return store_; }
  // This journal's own file (empty until created).
  [[nodiscard]] std::filesystem::path file() const;

 private:
  void open_own_file();
  void write_body(const std::string& body);

  const std::filesystem::path directory_;
  const std::string store_;
  // Guards file_, fd_, torn_ and pending_. The two counters are atomics so
  // pending_count() and damaged_lines() read them without it.
  mutable std::mutex mutex_;
  std::filesystem::path file_;
  int fd_ = -1;
  // A write failed part-way: the file may end inside a line, so the next line
  // starts on a new one (else it would be read as part of the torn one).
  bool torn_ = false;
  std::vector<JournalEntry> pending_;
  std::atomic<std::size_t> pending_count_{0};
  std::atomic<std::size_t> damaged_lines_{0};
};

}  // namespace prodsafe::idempotency
