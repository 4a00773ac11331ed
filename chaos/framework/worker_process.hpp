// A worker running as a separate process (`<executable> chaos-worker --spec
// FILE`), and what a scenario does to it: SIGKILL, SIGSTOP/SIGCONT, wait
// with a deadline, read its probe and its stats.
//
// The spec is written to <files_directory>/<name>.spec.json and the
// process's output to <files_directory>/<name>.log. The child gets
// PR_SET_PDEATHSIG(SIGKILL): it dies with the thread that spawned it, so
// spawn workers from a thread that outlives them (the scenario's). The
// destructor kills a worker that still runs, so no path leaks one.
//
// Thread safety: not safe for concurrent use; drive a worker from one thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "chaos/worker/probe.hpp"
#include "chaos/worker/worker.hpp"

namespace prodsafe::chaos {

// How a worker process ended.
struct WorkerExit {
  bool exited = false;  // exited by itself (code), else killed by a signal
  int code = 0;
  int signal = 0;

  [[nodiscard]] bool clean() const noexcept { return exited && code == kWorkerOk; }
  // "exit 0", "exit 3 (gave up)", "killed by SIGKILL"
  [[nodiscard]] std::string describe() const;
};

class WorkerProcess {
 public:
  // Writes the spec, creates the probe and starts the process. Throws
  // IoError when it cannot.
  WorkerProcess(WorkerSpec spec, const std::filesystem::path& executable);
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  [[nodiscard]] const WorkerSpec& spec() const noexcept { return spec_; }
  [[nodiscard]] const std::string& name() const noexcept { return spec_.name; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] const std::filesystem::path& log_file() const noexcept { return log_file_; }

  // True until the process has ended (reaps it without blocking).
  [[nodiscard]] bool running();
  [[nodiscard]] bool paused() const noexcept { return paused_; }
  // How it ended; nullopt while it runs.
  [[nodiscard]] const std::optional<WorkerExit>& exit() const noexcept { return exit_; }
  // True when it was killed on purpose (kill()).
  [[nodiscard]] bool killed() const noexcept { return killed_; }
  // True when it was killed because it outlived its deadline (kill_hung()).
  [[nodiscard]] bool hung() const noexcept { return hung_; }

  // SIGKILL (also when paused) and reap: a fault injected on purpose. No-op
  // once it has ended.
  void kill();
  // The same for a worker that missed its deadline: a failure, not a fault.
  void kill_hung();
  // SIGSTOP / SIGCONT. No-ops once it has ended.
  void pause();
  void resume();
  // Waits until the process ends or `timeout` passes; returns how it ended.
  std::optional<WorkerExit> wait_for(std::chrono::milliseconds timeout);

  [[nodiscard]] ProbeSnapshot probe() const { return probe_.read(); }
  // The stats the worker wrote at exit; nullopt when it wrote none (killed,
  // crashed) or they cannot be read.
  [[nodiscard]] std::optional<WorkerStats> stats() const;
  // The events it recorded as they happened (also when killed later).
  [[nodiscard]] std::vector<WorkerEvent> events() const { return read_events(events_path(spec_)); }
  // The last `lines` lines of its output.
  [[nodiscard]] std::string log_tail(std::size_t lines = 10) const;

 private:
  void reaped(int status);

  WorkerSpec spec_;
  std::filesystem::path log_file_;
  WorkerProbe probe_;
  pid_t pid_ = -1;
  bool paused_ = false;
  bool killed_ = false;
  bool hung_ = false;
  std::optional<WorkerExit> exit_;
};

// The path of the running executable (/proc/self/exe resolved), which the
// scenarios start as their workers.
[[nodiscard]] std::filesystem::path current_executable();

}  // namespace prodsafe::chaos
