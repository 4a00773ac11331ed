#include "chaos/framework/worker_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "prodsafe/core/backoff.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/child_process.hpp"

namespace prodsafe::chaos {
namespace {

namespace fs = std::filesystem;

std::string_view exit_meaning(int code) {
  switch (code) {
    case kWorkerOk:
      return "ok";
    case kWorkerFailed:
      return "failed";
    case kWorkerBadSpec:
      return "bad spec";
    case kWorkerGaveUp:
      return "gave up on requests";
    case kWorkerOrphaned:
      return "orphaned";
    default:
      return "unknown";
  }
}

}  // namespace

std::string WorkerExit::describe() const {
  if (exited) return fmt::format("exit {} ({})", code, exit_meaning(code));
  const char* name = ::sigabbrev_np(signal);
  return fmt::format("killed by SIG{}", name != nullptr ? name : std::to_string(signal));
}

fs::path current_executable() { return fs::read_symlink("/proc/self/exe"); }

WorkerProcess::WorkerProcess(WorkerSpec spec, const fs::path& executable) : spec_(std::move(spec)) {
  spec_.parent_pid = ::getpid();
  const fs::path files(spec_.files_directory);
  fs::create_directories(files);
  fs::create_directories(spec_.ledger_directory);
  if (!spec_.journal_directory.empty()) fs::create_directories(spec_.journal_directory);
  const fs::path spec_file = files / (spec_.name + ".spec.json");
  {
    std::ofstream out(spec_file, std::ios::trunc);
    out << nlohmann::json(spec_).dump(1) << "\n";
    if (!out) throw IoError(fmt::format("cannot write {}", spec_file.string()));
  }
  probe_ = WorkerProbe::create(probe_path(spec_));
  log_file_ = files / (spec_.name + ".log");

  pid_ = embedded::spawn_child({executable.string(), "chaos-worker", "--spec", spec_file.string()},
                               log_file_, kWorkerOrphaned);
}

WorkerProcess::~WorkerProcess() { kill(); }

void WorkerProcess::reaped(int status) {
  exit_ = WIFEXITED(status) ? WorkerExit{.exited = true, .code = WEXITSTATUS(status)}
                            : WorkerExit{.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0};
  paused_ = false;
}

bool WorkerProcess::running() {
  if (exit_) return false;
  int status = 0;
  const pid_t done = ::waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    reaped(status);
    return false;
  }
  return true;
}

void WorkerProcess::kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  killed_ = true;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped(status);
}

void WorkerProcess::kill_hung() {
  if (!running()) return;
  kill();
  killed_ = false;
  hung_ = true;
}

void WorkerProcess::pause() {
  if (!running()) return;
  ::kill(pid_, SIGSTOP);
  // SIGSTOP is delivered asynchronously: wait until the process is stopped,
  // so that what the caller reads from the probe afterwards stays true.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream stat(fmt::format("/proc/{}/stat", pid_));
    std::string line;
    std::getline(stat, line);
    const std::size_t paren = line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= line.size()) break;
    const char state = line[paren + 2];
    if (state == 'T' || state == 't') break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  paused_ = true;
}

void WorkerProcess::resume() {
  if (!running()) return;
  ::kill(pid_, SIGCONT);
  paused_ = false;
}

std::optional<WorkerExit> WorkerProcess::wait_for(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Backoff poll(Jitter::kNone, std::chrono::milliseconds(1), std::chrono::milliseconds(20));
  for (int retry = 0; running(); ++retry) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(poll.next(retry));
  }
  return exit_;
}

std::optional<WorkerStats> WorkerProcess::stats() const {
  std::ifstream in(stats_path(spec_));
  if (!in) return std::nullopt;
  try {
    return nlohmann::json::parse(in).get<WorkerStats>();
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::string WorkerProcess::log_tail(std::size_t lines) const {
  return embedded::last_lines(log_file_, lines);
}

}  // namespace prodsafe::chaos
