// A window into a running worker process: a small file both the worker and
// the scenario map (MAP_SHARED), where the worker publishes what it is doing
// (its phase, the op and token of the effect it runs) and its progress. The
// scenario reads it to strike at the right moment (kill a worker while its
// effect runs, after its downstream write) and to show progress. A killed
// worker's probe keeps its last state, so the scenario can tell where it died.
//
// Thread safety: one writer (the worker's request thread) and any number of
// readers, in any processes; read() returns a consistent snapshot.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

namespace prodsafe::chaos {

enum class WorkerPhase : std::uint64_t {
  kStarting = 0,       // connecting, reading its spec
  kRequesting = 1,     // in execute_once: claiming, waiting, or between effects
  kEffectRunning = 2,  // in the effect, before its ledger entry (downstream untouched)
  kEffectWritten = 3,  // in the effect, after its ledger entry (downstream acted)
  kCommitting = 4,     // the effect returned; the commit is on its way
  kFlushing = 5,       // all requests answered; flushing the journal, writing stats
  kDone = 6,
};

[[nodiscard]] std::string_view to_string(WorkerPhase phase) noexcept;

struct ProbeSnapshot {
  WorkerPhase phase = WorkerPhase::kStarting;
  // The op number (WorkerSpec::op_first + index) of the effect in
  // kEffectRunning..kCommitting, else -1; and its fencing token.
  std::int64_t op_number = -1;
  std::uint64_t token = 0;
  std::uint64_t requests_total = 0;
  std::uint64_t requests_done = 0;
  std::uint64_t executed = 0;
  std::uint64_t store_errors = 0;
  // False when no consistent snapshot could be read (a writer stopped
  // mid-update): the fields are then a best effort.
  bool consistent = true;
};

class WorkerProbe {
 public:
  // Creates (or empties) the file and maps it: the scenario, before spawning.
  static WorkerProbe create(const std::filesystem::path& path);
  // Maps an existing probe file: the worker. Throws IoError.
  static WorkerProbe open(const std::filesystem::path& path);

  WorkerProbe() = default;
  ~WorkerProbe();
  WorkerProbe(WorkerProbe&& other) noexcept;
  WorkerProbe& operator=(WorkerProbe&& other) noexcept;
  WorkerProbe(const WorkerProbe&) = delete;
  WorkerProbe& operator=(const WorkerProbe&) = delete;

  [[nodiscard]] explicit operator bool() const noexcept { return slots_ != nullptr; }

  // Writer side (no-ops on an empty probe).
  void enter(WorkerPhase phase, std::int64_t op_number = -1, std::uint64_t token = 0);
  void set_requests_total(std::uint64_t total);
  void count_request();
  void count_execution();
  void count_store_error();

  // Reader side (an empty probe reads as a default snapshot).
  [[nodiscard]] ProbeSnapshot read() const;

 private:
  explicit WorkerProbe(std::uint64_t* slots) : slots_(slots) {}
  void bump(int slot);

  std::uint64_t* slots_ = nullptr;
};

}  // namespace prodsafe::chaos
