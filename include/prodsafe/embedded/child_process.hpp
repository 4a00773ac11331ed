// Starts a child process that dies with the thread that started it: how the
// embedded redis-server and the chaos suite's workers are launched.
//
//   const pid_t pid = spawn_child({"/usr/bin/redis-server", "redis.conf"}, "redis.stdout");
//
// The child gets stdin from /dev/null, stdout and stderr appended to
// `output`, no other inherited descriptors, and PR_SET_PDEATHSIG(SIGKILL):
// it is killed when the *thread* that called spawn_child exits (the kernel
// ties the signal to the thread), so call it from a thread that outlives the
// child. A child whose parent died before it could arm the signal exits with
// `orphaned_exit_code`; one whose exec fails exits with 127. Reap it with
// waitpid().
//
// Thread safety: safe to call from several threads (each child is
// independent).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace prodsafe::embedded {

// Throws InvalidArgument for an empty argv, IoError when `output` cannot be
// opened or fork() fails (the messages say which).
pid_t spawn_child(const std::vector<std::string>& argv, const std::filesystem::path& output,
                  int orphaned_exit_code = 1);

// Runs a program to completion: spawn_child(argv, output) with `output`
// emptied first, then waits for the child. Returns its exit status, or 128 +
// the signal number when a signal ended it. Throws what spawn_child throws, and
// IoError when the child is still running after `timeout` (it is then killed
// and reaped; the message has the tail of its output).
int run_child(const std::vector<std::string>& argv, const std::filesystem::path& output,
              std::chrono::milliseconds timeout);

// The executable file `name`: `name` itself when it contains a '/', else the
// first match in $PATH (/usr/local/bin:/usr/bin:/bin when PATH is unset).
// Empty when there is none.
[[nodiscard]] std::filesystem::path find_executable(const std::string& name);

// The last `lines` lines of `file` (a child's output), each ending in '\n';
// empty when the file cannot be read.
[[nodiscard]] std::string last_lines(const std::filesystem::path& file, std::size_t lines);

}  // namespace prodsafe::embedded
