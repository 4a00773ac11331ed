#include "chaos/history/ledger.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"

namespace prodsafe::chaos {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const fs::path& path, std::string_view what, int error) {
  throw IoError(fmt::format("ledger {}: cannot {}: {}", path.string(), what, std::strerror(error)));
}

// The size of the file without its torn last line (the bytes after the last
// newline); `size` when it ends with a newline or is empty.
off_t complete_size(int fd, off_t size) {
  char buffer[4096];
  off_t end = size;
  while (end > 0) {
    const off_t start = std::max<off_t>(0, end - static_cast<off_t>(sizeof buffer));
    const ssize_t n = ::pread(fd, buffer, static_cast<std::size_t>(end - start), start);
    if (n <= 0) return size;  // unreadable: leave the file as it is
    for (ssize_t i = n - 1; i >= 0; --i) {
      if (buffer[i] == '\n') return start + i + 1;
    }
    end = start;
  }
  return 0;
}

void parse_into(LedgerContents& contents, const fs::path& file) {
  ++contents.files;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    contents.errors.push_back(
        fmt::format("{}: cannot open: {}", file.string(), std::strerror(errno)));
    return;
  }
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::size_t begin = 0;
  std::size_t line_number = 0;
  while (begin < text.size()) {
    ++line_number;
    const std::size_t newline = text.find('\n', begin);
    const std::string location = fmt::format("{}:{}", file.string(), line_number);
    if (newline == std::string::npos) {
      // The last line has no newline: the write that carried it was cut short.
      contents.torn_lines.push_back(location);
      break;
    }
    const std::string_view line(text.data() + begin, newline - begin);
    begin = newline + 1;
    try {
      LedgerEntry entry = nlohmann::json::parse(line).get<LedgerEntry>();
      entry.file = file.string();
      entry.line = line_number;
      contents.entries.push_back(std::move(entry));
    } catch (const nlohmann::json::exception& error) {
      contents.errors.push_back(fmt::format("{}: unreadable entry ({})", location, error.what()));
    }
  }
}

}  // namespace

void to_json(nlohmann::json& json, const LedgerEntry& entry) {
  json = nlohmann::json{{"op", entry.op_id},
                        {"token", entry.fencing_token},
                        {"worker", entry.worker},
                        {"pid", entry.pid},
                        {"recovering", entry.recovering},
                        {"seq", entry.sequence},
                        {"steady_ns", entry.steady_ns},
                        {"wall_us", entry.wall_us}};
}

void from_json(const nlohmann::json& json, LedgerEntry& entry) {
  json.at("op").get_to(entry.op_id);
  json.at("token").get_to(entry.fencing_token);
  json.at("worker").get_to(entry.worker);
  json.at("pid").get_to(entry.pid);
  json.at("recovering").get_to(entry.recovering);
  json.at("seq").get_to(entry.sequence);
  json.at("steady_ns").get_to(entry.steady_ns);
  json.at("wall_us").get_to(entry.wall_us);
}

fs::path ledger_path(const fs::path& directory, std::string_view name) {
  return directory / (std::string(name) + std::string(kLedgerExtension));
}

LedgerWriter::LedgerWriter(fs::path path, Clock& clock) : path_(std::move(path)), clock_(clock) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path_, "open for appending (does its directory exist?)", errno);
  // The file's name must survive a machine crash too, not only its lines.
  const fs::path directory = path_.has_parent_path() ? path_.parent_path() : fs::path(".");
  const int directory_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory_fd < 0 || ::fsync(directory_fd) != 0) {
    const int saved = errno;
    if (directory_fd >= 0) ::close(directory_fd);
    ::close(fd_);
    fail(path_, "fsync its directory", saved);
  }
  ::close(directory_fd);
  struct stat info {};
  if (::fstat(fd_, &info) != 0) {
    const int saved = errno;
    ::close(fd_);
    fail(path_, "stat", saved);
  }
  const int read_fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  const off_t complete = read_fd >= 0 ? complete_size(read_fd, info.st_size) : info.st_size;
  if (read_fd >= 0) ::close(read_fd);
  if (complete < info.st_size) {
    if (::ftruncate(fd_, complete) != 0 || ::fdatasync(fd_) != 0) {
      const int saved = errno;
      ::close(fd_);
      fail(path_, "cut off its torn last line", saved);
    }
    torn_bytes_discarded_ = static_cast<std::size_t>(info.st_size - complete);
    logger()->warn("ledger {}: cut off a torn last line of {} bytes left by an earlier writer",
                   path_.string(), torn_bytes_discarded_);
  }
}

LedgerWriter::~LedgerWriter() {
  if (fd_ >= 0) ::close(fd_);
}

LedgerEntry LedgerWriter::append(const LedgerEntry& entry) {
  LedgerEntry written = entry;
  written.file.clear();
  written.line = 0;
  if (written.pid == 0) written.pid = ::getpid();
  {
    // Stamped and written under one lock, so sequence and time increase in
    // file order; the fsync runs outside it, so concurrent appends share it.
    std::lock_guard lock(mutex_);
    if (failed_) {
      throw IoError(
          fmt::format("ledger {}: an earlier append failed; open a new writer", path_.string()));
    }
    written.sequence = ++sequence_;
    written.steady_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.steady_now().time_since_epoch())
            .count();
    written.wall_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          clock_.system_now().time_since_epoch())
                          .count();
    const std::string line = nlohmann::json(written).dump() + '\n';
    ssize_t n = -1;
    do {
      n = ::write(fd_, line.data(), line.size());
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(line.size())) {
      const int saved = n < 0 ? errno : EIO;
      failed_ = true;
      fail(path_, n < 0 ? "write" : "write a whole line (short write)", saved);
    }
  }
  if (::fdatasync(fd_) != 0) {
    const int saved = errno;
    std::lock_guard lock(mutex_);
    failed_ = true;
    fail(path_, "fdatasync", saved);
  }
  return written;
}

LedgerContents read_ledger(const fs::path& file) {
  LedgerContents contents;
  parse_into(contents, file);
  return contents;
}

LedgerContents read_ledgers(const fs::path& directory) {
  LedgerContents contents;
  std::error_code error;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(directory, error), end; !error && it != end; it.increment(error)) {
    if (it->path().extension() == kLedgerExtension && it->is_regular_file()) {
      files.push_back(it->path());
    }
  }
  if (error) {
    contents.errors.push_back(
        fmt::format("{}: cannot list ledgers: {}", directory.string(), error.message()));
    return contents;
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) parse_into(contents, file);
  return contents;
}

}  // namespace prodsafe::chaos
