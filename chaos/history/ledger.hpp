// The chaos suite's record of side effects, kept outside Redis: each worker
// process appends one line per executed effect to its own file and fsyncs it
// before the effect counts as done. The checker reads all files afterwards.
//
// Format: one JSON object per line, written with a single write() and then
// fdatasync():
//   {"op":"order-7","token":2,"worker":"w1","pid":4242,"recovering":true,
//    "seq":3,"steady_ns":81234567890,"wall_us":1767225600000000}
// An entry counts only when its whole line, newline included, is in the file.
// A crash mid-write leaves a torn last line (no newline): readers skip and
// count it. Any other unreadable line is an error naming file:line.
//
// Use one file per process (e.g. ledger_path(dir, worker + "-" + pid)): a
// writer that opens a file ending in a torn line cuts the fragment off first,
// so that its own lines stay readable, and the fragment is then not counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "prodsafe/core/clock.hpp"

namespace prodsafe::chaos {

// Files read_ledgers() reads.
inline constexpr std::string_view kLedgerExtension = ".ledger";

struct LedgerEntry {
  // The effect's id, as the checker expects it (e.g. "order-7").
  std::string op_id{};
  // The fencing token the execution ran under.
  std::uint64_t fencing_token = 0;
  // Who executed it.
  std::string worker{};
  // Default: 0, which LedgerWriter::append() replaces with getpid().
  std::int64_t pid = 0;
  // True when the execution took over an expired lease.
  bool recovering = false;
  // Set by LedgerWriter::append(), increasing in the order the writer's lines
  // are written: the writer object's 1-based count of appends, steady time
  // (CLOCK_MONOTONIC, shared by all processes of one boot) in ns, and wall
  // time in µs since the Unix epoch.
  std::uint64_t sequence = 0;
  std::int64_t steady_ns = 0;
  std::int64_t wall_us = 0;
  // Where a reader found the entry (file path and 1-based line); not written.
  std::string file{};
  std::size_t line = 0;
};

// The JSON form of an entry (without file and line), and back. from_json
// throws nlohmann::json exceptions when a field is missing or mistyped.
void to_json(nlohmann::json& json, const LedgerEntry& entry);
void from_json(const nlohmann::json& json, LedgerEntry& entry);

// <directory>/<name>.ledger
[[nodiscard]] std::filesystem::path ledger_path(const std::filesystem::path& directory,
                                                std::string_view name);

// Appends entries to one ledger file.
// Thread safety: safe for concurrent use; each line is written whole.
class LedgerWriter {
 public:
  // Opens (O_APPEND | O_CREAT) `path`; its directory must exist. Throws
  // IoError naming the file when it cannot. `clock` stamps the
  // entries and must outlive the writer.
  explicit LedgerWriter(std::filesystem::path path, Clock& clock = SystemClock::instance());
  ~LedgerWriter();
  LedgerWriter(const LedgerWriter&) = delete;
  LedgerWriter& operator=(const LedgerWriter&) = delete;

  // Stamps `entry` (sequence, steady_ns, wall_us, and pid when 0), writes its
  // line and fdatasyncs the file; returns the entry as written. Throws
  // IoError when the line may not be durable; the writer is then
  // unusable (every later append throws), since its file may end torn.
  LedgerEntry append(const LedgerEntry& entry);

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  // Bytes of a torn last line cut off when the file was opened (0: none).
  [[nodiscard]] std::size_t torn_bytes_discarded() const noexcept { return torn_bytes_discarded_; }

 private:
  const std::filesystem::path path_;
  Clock& clock_;
  int fd_ = -1;
  std::size_t torn_bytes_discarded_ = 0;

  // Serialises append(): guards sequence_ and failed_, and the write and
  // fdatasync of each line to fd_ (so that lines never interleave).
  std::mutex mutex_;
  std::uint64_t sequence_ = 0;  // guarded by mutex_
  bool failed_ = false;         // guarded by mutex_
};

// What readers found.
struct LedgerContents {
  // In file order; read_ledgers() takes the files in name order.
  std::vector<LedgerEntry> entries{};
  // "file:line" of each torn last line that was skipped.
  std::vector<std::string> torn_lines{};
  // "file:line: reason" of each unreadable line that is not a torn last line,
  // and of each file that could not be read.
  std::vector<std::string> errors{};
  std::size_t files = 0;
};

// Reads one ledger file. Problems are reported in the result, not thrown.
[[nodiscard]] LedgerContents read_ledger(const std::filesystem::path& file);
// Reads every *.ledger file in `directory` (not recursive); a missing
// directory is an error in the result.
[[nodiscard]] LedgerContents read_ledgers(const std::filesystem::path& directory);

}  // namespace prodsafe::chaos
