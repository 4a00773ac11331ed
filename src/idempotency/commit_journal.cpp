#include "commit_journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"

namespace prodsafe::idempotency {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// CRC-32 (IEEE 802.3, reflected), enough to catch a torn or damaged line.
constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t value = i;
    for (int bit = 0; bit < 8; ++bit) value = (value & 1) ? 0xEDB88320u ^ (value >> 1) : value >> 1;
    table[i] = value;
  }
  return table;
}
constexpr std::array<std::uint32_t, 256> kCrcTable = make_crc_table();

std::uint32_t crc32(std::string_view bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : bytes) crc = kCrcTable[(crc ^ byte) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

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

bool parse_state(std::string_view text, FinalState& state) {
  for (FinalState candidate :
       {FinalState::kCompleted, FinalState::kFailed, FinalState::kUnavailable}) {
    if (text == to_string(candidate)) {
      state = candidate;
      return true;
    }
  }
  return false;
}

bool same(const JournalEntry& a, const JournalEntry& b) {
  return a.holder.token == b.holder.token && a.holder.id == b.holder.id && a.key == b.key;
}

// "<crc> <length> <body>\n"
std::string framed(std::string_view body) {
  return fmt::format("{:08x} {} {}\n", crc32(body), body.size(), body);
}

}  // namespace

std::string store_body(std::string_view store) { return "store " + to_hex(store); }

std::string put_body(const JournalEntry& entry) {
  return fmt::format("put {} {} {} {} {} {} {} {}", entry.holder.token, to_hex(entry.holder.id),
                     entry.ttl.count(), entry.lease.count(), to_string(entry.state),
                     to_hex(entry.key), to_hex(entry.fingerprint), to_hex(entry.result));
}

std::string done_body(const JournalEntry& entry) {
  return fmt::format("done {} {} {}", entry.holder.token, to_hex(entry.holder.id),
                     to_hex(entry.key));
}

std::string journal_line(std::string_view body) { return framed(body); }

namespace {

// The body of a framed line, or nullopt when its length or checksum is wrong.
std::optional<std::string_view> unframe(std::string_view line) {
  const std::size_t first = line.find(' ');
  if (first != 8) return std::nullopt;
  const std::size_t second = line.find(' ', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  std::uint32_t crc = 0;
  std::size_t length = 0;
  const std::string_view crc_text = line.substr(0, first);
  const std::string_view length_text = line.substr(first + 1, second - first - 1);
  if (std::from_chars(crc_text.data(), crc_text.data() + crc_text.size(), crc, 16).ptr !=
          crc_text.data() + crc_text.size() ||
      std::from_chars(length_text.data(), length_text.data() + length_text.size(), length).ptr !=
          length_text.data() + length_text.size()) {
    return std::nullopt;
  }
  const std::string_view body = line.substr(second + 1);
  if (body.size() != length || crc32(body) != crc) return std::nullopt;
  return body;
}

bool apply_body(std::string_view body, JournalContents& contents) {
  std::istringstream words{std::string(body)};
  std::string op;
  words >> op;
  JournalEntry entry;
  std::string key;
  std::string holder;
  if (op == "store") {
    std::string store;
    return static_cast<bool>(words >> store) && from_hex(store, contents.store);
  }
  if (op == "put") {
    long long ttl = 0;
    long long lease = 0;
    std::string state;
    std::string fingerprint;
    std::string result;
    if (!(words >> entry.holder.token >> holder >> ttl >> lease >> state >> key >> fingerprint >>
          result) ||
        !from_hex(holder, entry.holder.id) || !parse_state(state, entry.state) ||
        !from_hex(key, entry.key) || !from_hex(fingerprint, entry.fingerprint) ||
        !from_hex(result, entry.result)) {
      return false;
    }
    entry.ttl = milliseconds(ttl);
    entry.lease = milliseconds(lease);
    contents.pending.push_back(std::move(entry));
    return true;
  }
  if (op == "done") {
    if (!(words >> entry.holder.token >> holder >> key) || !from_hex(holder, entry.holder.id) ||
        !from_hex(key, entry.key)) {
      return false;
    }
    std::erase_if(contents.pending, [&](const JournalEntry& e) { return same(e, entry); });
    return true;
  }
  return false;
}

}  // namespace

JournalContents parse_journal(std::string_view text) {
  JournalContents contents;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty()) continue;
    const auto body = unframe(line);
    if (!body || !apply_body(*body, contents)) ++contents.damaged_lines;
  }
  return contents;
}

namespace {

bool read_all(int fd, std::string& out) {
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "host";
  return name;
}

// Why a file or directory that is not private to this user is refused; empty
// when it is.
std::string not_private(const struct stat& info) {
  if (info.st_uid != ::geteuid()) {
    return fmt::format("it is owned by uid {}, not by this process's user (uid {})", info.st_uid,
                       ::geteuid());
  }
  if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return fmt::format("it is writable by group or others (mode {:04o})", info.st_mode & 07777);
  }
  return {};
}

void check_directory(const fs::path& directory) {
  struct stat info {};
  if (::stat(directory.c_str(), &info) != 0) {
    if (errno == ENOENT) return;  // made (0700) when first needed
    throw InvalidArgument(fmt::format("cannot use the commit journal directory {}: {}",
                                      directory.string(), std::strerror(errno)));
  }
  std::string why = S_ISDIR(info.st_mode) ? not_private(info) : "it is not a directory";
  if (!why.empty()) {
    throw InvalidArgument(fmt::format(
        "refusing the commit journal directory {}: {}; anyone who can write there could make "
        "this process commit forged results. Use a directory only this user can write (chmod "
        "700), or set WrapperOptions::journal_directory or $PRODSAFE_JOURNAL_DIR to one",
        directory.string(), why));
  }
}

}  // namespace

JournalContents read_journal(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  std::string text;
  if (fd < 0) return {};
  const bool ok = read_all(fd, text);
  ::close(fd);
  return ok ? parse_journal(text) : JournalContents{};
}

fs::path default_journal_directory() {
  const char* env = std::getenv("PRODSAFE_JOURNAL_DIR");
  if (env != nullptr && *env != '\0') return env;
  return fmt::format("/var/tmp/prodsafe-journal-{}", ::geteuid());
}

CommitJournal::CommitJournal(fs::path directory, std::string store)
    : directory_(std::move(directory)), store_(std::move(store)) {
  check_directory(directory_);
  adopt_orphans();
}

CommitJournal::~CommitJournal() {
  if (fd_ < 0) return;
  if (pending_.empty()) ::unlink(file_.c_str());
  ::close(fd_);  // releases the lock; a non-empty file is adopted by the next process
}

fs::path CommitJournal::file() const {
  std::lock_guard lock(mutex_);
  return file_;
}

void CommitJournal::open_own_file() {
  if (fd_ >= 0) return;
  std::error_code error;
  if (directory_.has_parent_path()) fs::create_directories(directory_.parent_path(), error);
  if (::mkdir(directory_.c_str(), 0700) != 0 && errno != EEXIST) {
    throw IoError(fmt::format(
        "cannot create the commit journal directory {}: {}; set "
        "WrapperOptions::journal_directory or $PRODSAFE_JOURNAL_DIR to a writable directory",
        directory_.string(), std::strerror(errno)));
  }
  check_directory(directory_);
  std::random_device random;
  const std::string base =
      fmt::format("{}-{}-{:08x}", host_name(), ::getpid(), static_cast<unsigned>(random()));
  // Created and locked under a name the orphan scan ignores, then renamed, so
  // no other process can adopt it in between.
  const fs::path temporary = directory_ / (base + ".new");
  const fs::path final_path = directory_ / (base + ".journal");
  const int fd =
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0 ||
      ::rename(temporary.c_str(), final_path.c_str()) != 0) {
    const int saved = errno;
    if (fd >= 0) ::close(fd);
    throw IoError(fmt::format("cannot create the commit journal {}: {}", final_path.string(),
                              std::strerror(saved)));
  }
  fd_ = fd;
  file_ = final_path;
  write_body(store_body(store_));
}

void CommitJournal::write_body(const std::string& body) {
  open_own_file();
  // Appended, not `"\n" + framed(body)`: GCC 12 at -O3 reports a false
  // -Wrestrict in operator+(const char*, std::string&&) (GCC bug 105329).
  std::string line = torn_ ? "\n" : "";
  line += framed(body);
  std::size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      torn_ = torn_ || written > 0;
      throw IoError(fmt::format("cannot write the commit journal {}: {}", file_.string(),
                                std::strerror(errno)));
    }
    written += static_cast<std::size_t>(n);
  }
  torn_ = false;
  if (::fdatasync(fd_) != 0) {
    throw IoError(fmt::format("cannot fsync the commit journal {}: {}", file_.string(),
                              std::strerror(errno)));
  }
}

void CommitJournal::append(const JournalEntry& entry) {
  std::lock_guard lock(mutex_);
  // Held in memory even when the file cannot be written (a full disk), so
  // this process still commits it; the exception says it is not durable.
  pending_.push_back(entry);
  pending_count_.store(pending_.size());
  write_body(put_body(entry));
}

void CommitJournal::mark_done(const JournalEntry& entry) {
  std::lock_guard lock(mutex_);
  std::erase_if(pending_, [&](const JournalEntry& e) { return same(e, entry); });
  pending_count_.store(pending_.size());
  if (fd_ < 0) return;
  if (pending_.empty()) {
    // Nothing left to commit: start the file afresh, with its store line.
    if (::ftruncate(fd_, 0) == 0) {
      write_body(store_body(store_));
      return;
    }
  }
  write_body(done_body(entry));
}

std::vector<JournalEntry> CommitJournal::pending() const {
  std::lock_guard lock(mutex_);
  return pending_;
}

bool CommitJournal::holds(const JournalEntry& entry) const {
  std::lock_guard lock(mutex_);
  return std::any_of(pending_.begin(), pending_.end(),
                     [&](const JournalEntry& e) { return same(e, entry); });
}

std::optional<JournalEntry> CommitJournal::find(std::string_view key) const {
  std::lock_guard lock(mutex_);
  for (auto entry = pending_.rbegin(); entry != pending_.rend(); ++entry) {
    if (entry->key == key) return *entry;
  }
  return std::nullopt;
}

std::vector<JournalEntry> CommitJournal::adopt_orphans() {
  std::vector<JournalEntry> adopted;
  std::error_code error;
  if (!fs::is_directory(directory_, error)) return adopted;
  std::lock_guard lock(mutex_);
  for (const auto& item : fs::directory_iterator(directory_, error)) {
    const fs::path& path = item.path();
    if (path.extension() != ".journal" || path == file_) continue;
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat info {};
    // A live owner holds the lock; an unlinked file was adopted by another process.
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || ::fstat(fd, &info) != 0 || info.st_nlink == 0 ||
        !S_ISREG(info.st_mode)) {
      ::close(fd);
      continue;
    }
    if (const std::string why = not_private(info); !why.empty()) {
      logger()->error(
          "refusing to adopt the commit journal {}: {}; a result in it is not trusted. Check who "
          "wrote it, then move it away",
          path.string(), why);
      ::close(fd);
      continue;
    }
    std::string text;
    if (!read_all(fd, text)) {
      logger()->error("cannot read the commit journal {}: {}", path.string(), std::strerror(errno));
      ::close(fd);
      continue;
    }
    JournalContents contents = parse_journal(text);
    if (contents.store != store_) {
      // Another store's results (another Redis, database or key prefix): its
      // own wrapper adopts them.
      if (contents.store.empty()) {
        logger()->warn(
            "the commit journal {} does not say which store it belongs to (damaged, or written "
            "by another version); it is left alone",
            path.string());
      }
      ::close(fd);
      continue;
    }
    if (contents.damaged_lines > 0) {
      damaged_lines_.fetch_add(contents.damaged_lines);
      logger()->error(
          "commit journal {}: skipped {} damaged line(s) (a torn write, or the file was "
          "altered); their results are not committed",
          path.string(), contents.damaged_lines);
    }
    try {
      for (const JournalEntry& entry : contents.pending) {
        write_body(put_body(entry));
        pending_.push_back(entry);
        adopted.push_back(entry);
      }
      ::unlink(path.c_str());
      if (!contents.pending.empty()) {
        logger()->info("adopted {} pending commit(s) from {}", contents.pending.size(),
                       path.string());
      }
    } catch (const Error& failure) {
      logger()->error("cannot adopt the commit journal {}: {}", path.string(), failure.what());
    }
    ::close(fd);
  }
  pending_count_.store(pending_.size());
  return adopted;
}

}  // namespace prodsafe::idempotency
