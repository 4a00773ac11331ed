#include "chaos/worker/probe.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::chaos {
namespace {

// The file is one page of 64-bit slots; phase, op and token change together
// under a sequence lock (slot 0: odd while the writer is in the middle).
enum Slot : int {
  kSequence,
  kPhase,
  kOp,
  kToken,
  kTotal,
  kDone,
  kExecuted,
  kErrors,
  kSlots,
};
constexpr std::size_t kFileSize = 4096;
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free,
              "the probe needs lock-free 64-bit atomics to be shared between processes");

std::atomic_ref<std::uint64_t> at(std::uint64_t* slots, int slot) {
  return std::atomic_ref<std::uint64_t>(slots[slot]);
}

std::uint64_t* map_file(const std::filesystem::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw IoError(fmt::format("probe {}: cannot open: {}", path.string(), std::strerror(errno)));
  }
  if ((flags & O_CREAT) != 0 && ::ftruncate(fd, kFileSize) != 0) {
    const int saved = errno;
    ::close(fd);
    throw IoError(fmt::format("probe {}: cannot size: {}", path.string(), std::strerror(saved)));
  }
  void* memory = ::mmap(nullptr, kFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int saved = errno;
  ::close(fd);
  if (memory == MAP_FAILED) {
    throw IoError(fmt::format("probe {}: cannot map: {}", path.string(), std::strerror(saved)));
  }
  return static_cast<std::uint64_t*>(memory);
}

}  // namespace

std::string_view to_string(WorkerPhase phase) noexcept {
  switch (phase) {
    case WorkerPhase::kStarting:
      return "starting";
    case WorkerPhase::kRequesting:
      return "requesting";
    case WorkerPhase::kEffectRunning:
      return "effect running";
    case WorkerPhase::kEffectWritten:
      return "effect written";
    case WorkerPhase::kCommitting:
      return "committing";
    case WorkerPhase::kFlushing:
      return "flushing";
    case WorkerPhase::kDone:
      return "done";
  }
  return "unknown";
}

WorkerProbe WorkerProbe::create(const std::filesystem::path& path) {
  std::uint64_t* slots = map_file(path, O_CREAT | O_TRUNC);
  at(slots, kOp).store(static_cast<std::uint64_t>(-1));
  return WorkerProbe(slots);
}

WorkerProbe WorkerProbe::open(const std::filesystem::path& path) {
  return WorkerProbe(map_file(path, 0));
}

WorkerProbe::~WorkerProbe() {
  if (slots_ != nullptr) ::munmap(slots_, kFileSize);
}

WorkerProbe::WorkerProbe(WorkerProbe&& other) noexcept
    : slots_(std::exchange(other.slots_, nullptr)) {}

WorkerProbe& WorkerProbe::operator=(WorkerProbe&& other) noexcept {
  if (this != &other) {
    if (slots_ != nullptr) ::munmap(slots_, kFileSize);
    slots_ = std::exchange(other.slots_, nullptr);
  }
  return *this;
}

void WorkerProbe::enter(WorkerPhase phase, std::int64_t op_number, std::uint64_t token) {
  if (slots_ == nullptr) return;
  auto sequence = at(slots_, kSequence);
  sequence.fetch_add(1);  // odd: an update is under way
  at(slots_, kPhase).store(static_cast<std::uint64_t>(phase));
  at(slots_, kOp).store(static_cast<std::uint64_t>(op_number));
  at(slots_, kToken).store(token);
  sequence.fetch_add(1);
}

void WorkerProbe::set_requests_total(std::uint64_t total) {
  if (slots_ != nullptr) at(slots_, kTotal).store(total);
}

void WorkerProbe::bump(int slot) {
  if (slots_ != nullptr) at(slots_, slot).fetch_add(1);
}

void WorkerProbe::count_request() { bump(kDone); }
void WorkerProbe::count_execution() { bump(kExecuted); }
void WorkerProbe::count_store_error() { bump(kErrors); }

ProbeSnapshot WorkerProbe::read() const {
  ProbeSnapshot snapshot;
  if (slots_ == nullptr) return snapshot;
  constexpr int kAttempts = 1000;
  for (int attempt = 1;; ++attempt) {
    const std::uint64_t before = at(slots_, kSequence).load();
    snapshot.phase = static_cast<WorkerPhase>(at(slots_, kPhase).load());
    snapshot.op_number = static_cast<std::int64_t>(at(slots_, kOp).load());
    snapshot.token = at(slots_, kToken).load();
    const std::uint64_t after = at(slots_, kSequence).load();
    if (before == after && before % 2 == 0) break;
    if (attempt == kAttempts) {
      snapshot.consistent = false;
      break;
    }
  }
  snapshot.requests_total = at(slots_, kTotal).load();
  snapshot.requests_done = at(slots_, kDone).load();
  snapshot.executed = at(slots_, kExecuted).load();
  snapshot.store_errors = at(slots_, kErrors).load();
  return snapshot;
}

}  // namespace prodsafe::chaos
