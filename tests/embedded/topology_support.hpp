// Helpers shared by the Sentinel topology and Redis Cluster tests.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace prodsafe::embedded::testing {

// The processes this process started (every thread's children), by pid.
inline std::set<pid_t> child_pids() {
  std::set<pid_t> out;
  std::error_code ignored;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ignored)) {
    std::ifstream children(task.path() / "children");
    for (pid_t pid = 0; children >> pid;) out.insert(pid);
  }
  return out;
}

// True when `pid` no longer runs (or is a zombie nobody reaped yet).
inline bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_text, name, state;
  stat >> pid_text >> name >> state;
  return state == "Z";
}

}  // namespace prodsafe::embedded::testing
