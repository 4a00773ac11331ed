// Helpers for the tests of the chaos history (ledgers, checker): a
// temporary directory, raw file access, and ledger entries.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "chaos/history/ledger.hpp"

namespace prodsafe::chaos::fixtures {

namespace fs = std::filesystem;

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

inline std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void append_raw(const fs::path& file, std::string_view bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::app);
  out << bytes;
}

inline LedgerEntry order(std::string op, std::uint64_t token = 1, std::string worker = "w1") {
  return LedgerEntry{.op_id = std::move(op), .fencing_token = token, .worker = std::move(worker)};
}

// An entry as a reader returns it, at steady time `steady_ns`.
inline LedgerEntry executed(std::string op, std::uint64_t token, std::int64_t steady_ns,
                            std::string worker = "w1") {
  LedgerEntry entry = order(std::move(op), token, std::move(worker));
  entry.steady_ns = steady_ns;
  return entry;
}

}  // namespace prodsafe::chaos::fixtures
