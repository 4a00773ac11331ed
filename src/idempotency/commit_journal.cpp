#include "commit_journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"

namespace prodsafe::idempotency {
namespace {

namespace fs = std::filesystem;

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2 + 1);
  out.push_back('x');  // so that an empty value is still a word
  for (unsigned char byte : bytes) {
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0x0F]);
  }
  return out;
}

bool from_hex(std::string_view text, std::string& out) {
  if (text.empty() || text.front() != 'x' || text.size() % 2 != 1) return false;
  out.clear();
  auto value = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 1; i < text.size(); i += 2) {
    const int high = value(text[i]);
    const int low = value(text[i + 1]);
    if (high < 0 || low < 0) return false;
    out.push_back(static_cast<char>(high * 16 + low));
  }
  return true;
}

bool same(const JournalEntry& a, const JournalEntry& b) {
  return a.token == b.token && a.key == b.key;
}

std::string put_line(const JournalEntry& entry) {
  return fmt::format("put {} {} {} {} {}\n", entry.token, entry.ttl.count(), to_hex(entry.key),
                     to_hex(entry.fingerprint), to_hex(entry.result));
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "host";
  return name;
}

}  // namespace

std::vector<JournalEntry> read_journal(const fs::path& file) {
  std::ifstream in(file);
  std::vector<JournalEntry> entries;
  std::size_t line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    std::istringstream words(line);
    std::string op;
    words >> op;
    JournalEntry entry;
    std::string key;
    bool ok = false;
    if (op == "put") {
      long long ttl = 0;
      std::string fingerprint;
      std::string result;
      ok = static_cast<bool>(words >> entry.token >> ttl >> key >> fingerprint >> result) &&
           from_hex(key, entry.key) && from_hex(fingerprint, entry.fingerprint) &&
           from_hex(result, entry.result);
      entry.ttl = std::chrono::milliseconds(ttl);
      if (ok) entries.push_back(std::move(entry));
    } else if (op == "done") {
      ok = static_cast<bool>(words >> entry.token >> key) && from_hex(key, entry.key);
      if (ok) std::erase_if(entries, [&](const JournalEntry& e) { return same(e, entry); });
    }
    if (!ok) {
      logger()->warn("commit journal {}: ignoring unreadable line {} (a torn write?)",
                     file.string(), line_number);
    }
  }
  return entries;
}

CommitJournal::CommitJournal(fs::path directory) : directory_(std::move(directory)) {
  adopt_orphans();
}

CommitJournal::~CommitJournal() {
  if (fd_ < 0) return;
  const bool empty = pending_.empty();
  if (empty) ::unlink(file_.c_str());
  ::close(fd_);  // releases the lock; a non-empty file is adopted by the next process
}

fs::path CommitJournal::file() const {
  std::lock_guard lock(mutex_);
  return file_;
}

void CommitJournal::open_own_file() {
  if (fd_ >= 0) return;
  std::error_code error;
  fs::create_directories(directory_, error);
  if (error) {
    throw StoreUnavailable(fmt::format(
        "cannot create the commit journal directory {}: {}; set "
        "WrapperOptions::journal_directory or $PRODSAFE_JOURNAL_DIR to a writable directory",
        directory_.string(), error.message()));
  }
  std::random_device random;
  const std::string base =
      fmt::format("{}-{}-{:08x}", host_name(), ::getpid(), static_cast<unsigned>(random()));
  // Created and locked under a name the orphan scan ignores, then renamed, so
  // no other process can adopt it in between.
  const fs::path temporary = directory_ / (base + ".new");
  const fs::path final_path = directory_ / (base + ".journal");
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0 ||
      ::rename(temporary.c_str(), final_path.c_str()) != 0) {
    const int saved = errno;
    if (fd >= 0) ::close(fd);
    throw StoreUnavailable(fmt::format("cannot create the commit journal {}: {}",
                                       final_path.string(), std::strerror(saved)));
  }
  fd_ = fd;
  file_ = final_path;
}

void CommitJournal::write_line(const std::string& line) {
  open_own_file();
  std::size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw StoreUnavailable(fmt::format("cannot write the commit journal {}: {}", file_.string(),
                                         std::strerror(errno)));
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fdatasync(fd_) != 0) {
    throw StoreUnavailable(fmt::format("cannot fsync the commit journal {}: {}", file_.string(),
                                       std::strerror(errno)));
  }
}

void CommitJournal::append(const JournalEntry& entry) {
  std::lock_guard lock(mutex_);
  write_line(put_line(entry));
  pending_.push_back(entry);
  pending_count_.store(pending_.size());
}

void CommitJournal::mark_done(const JournalEntry& entry) {
  std::lock_guard lock(mutex_);
  std::erase_if(pending_, [&](const JournalEntry& e) { return same(e, entry); });
  pending_count_.store(pending_.size());
  if (fd_ < 0) return;
  if (pending_.empty()) {
    // Nothing left to commit: start the file afresh.
    if (::ftruncate(fd_, 0) == 0 && ::fdatasync(fd_) == 0) return;
  }
  write_line(fmt::format("done {} {}\n", entry.token, to_hex(entry.key)));
}

std::vector<JournalEntry> CommitJournal::pending() const {
  std::lock_guard lock(mutex_);
  return pending_;
}

std::optional<JournalEntry> CommitJournal::find(std::string_view key) const {
  std::lock_guard lock(mutex_);
  for (auto entry = pending_.rbegin(); entry != pending_.rend(); ++entry) {
    if (entry->key == key) return *entry;
  }
  return std::nullopt;
}

void CommitJournal::adopt_orphans() {
  std::error_code error;
  if (!fs::is_directory(directory_, error)) return;
  std::lock_guard lock(mutex_);
  for (const auto& item : fs::directory_iterator(directory_, error)) {
    if (item.path().extension() != ".journal" || item.path() == file_) continue;
    const int fd = ::open(item.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat info {};
    // A live owner holds the lock; an unlinked file was adopted by another process.
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || ::fstat(fd, &info) != 0 || info.st_nlink == 0) {
      ::close(fd);
      continue;
    }
    std::vector<JournalEntry> entries = read_journal(item.path());
    try {
      for (const JournalEntry& entry : entries) {
        write_line(put_line(entry));
        pending_.push_back(entry);
      }
      ::unlink(item.path().c_str());
      if (!entries.empty()) {
        logger()->info("adopted {} pending commit(s) from {}", entries.size(),
                       item.path().string());
      }
    } catch (const Error& failure) {
      logger()->error("cannot adopt the commit journal {}: {}", item.path().string(),
                      failure.what());
    }
    ::close(fd);
  }
  pending_count_.store(pending_.size());
}

}  // namespace prodsafe::idempotency
