// The local, fsynced journal of results whose commit could not reach the
// store after the effect ran. Each journal object owns one file in a shared
// directory, held under flock() for the life of the process; at construction
// it adopts the files of processes that died (their lock is gone), so a
// restarted worker commits what its predecessor could not.
//
// File format, one record a line (hex keeps keys and results binary-safe):
//   put <token> <ttl_ms> <hex key> <hex fingerprint> <hex result>
//   done <token> <hex key>
// A torn last line (a crash mid-write) is ignored.
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

namespace prodsafe::idempotency {

struct JournalEntry {
  std::string key;
  std::uint64_t token = 0;
  std::chrono::milliseconds ttl{0};
  std::string fingerprint;
  std::string result;
};

class CommitJournal {
 public:
  // Adopts orphaned journals in `directory` if it exists; creates nothing
  // until the first append (or an adoption) needs a file.
  explicit CommitJournal(std::filesystem::path directory);
  ~CommitJournal();
  CommitJournal(const CommitJournal&) = delete;
  CommitJournal& operator=(const CommitJournal&) = delete;

  // Appends the entry and fsyncs it. Throws StoreUnavailable when the file
  // cannot be written (the message names it).
  void append(const JournalEntry& entry);
  // Records that `entry` reached the store; the file is emptied once nothing
  // is pending.
  void mark_done(const JournalEntry& entry);

  [[nodiscard]] std::vector<JournalEntry> pending() const;
  // The newest pending entry for `key`, if any.
  [[nodiscard]] std::optional<JournalEntry> find(std::string_view key) const;
  [[nodiscard]] std::size_t pending_count() const noexcept { return pending_count_.load(); }
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return directory_; }
  // This journal's own file (empty until created).
  [[nodiscard]] std::filesystem::path file() const;

 private:
  void open_own_file();
  void write_line(const std::string& line);
  void adopt_orphans();

  const std::filesystem::path directory_;
  mutable std::mutex mutex_;
  std::filesystem::path file_;
  int fd_ = -1;
  std::vector<JournalEntry> pending_;
  std::atomic<std::size_t> pending_count_{0};
};

// Reads a journal file's pending entries (puts without a matching done).
[[nodiscard]] std::vector<JournalEntry> read_journal(const std::filesystem::path& file);

}  // namespace prodsafe::idempotency
