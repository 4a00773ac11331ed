#include "prodsafe/embedded/child_process.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::embedded {

pid_t spawn_child(const std::vector<std::string>& argv, const std::filesystem::path& output,
                  int orphaned_exit_code) {
  if (argv.empty()) throw InvalidArgument("spawn_child needs the program to run, got none");
  // Everything the child needs is prepared before fork(): after it, only
  // async-signal-safe calls are allowed.
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const int out = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (out < 0) {
    throw IoError(fmt::format("cannot open {} for the output of {}: {}", output.string(),
                              argv.front(), std::strerror(errno)));
  }
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child < 0) {
    const int saved = errno;
    ::close(out);
    throw IoError(
        fmt::format("cannot start {}: fork() failed: {}", argv.front(), std::strerror(saved)));
  }
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(orphaned_exit_code);
    const int null_in = ::open("/dev/null", O_RDONLY);
    if (null_in >= 0) ::dup2(null_in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    ::close_range(3, ~0U, 0);
    ::execv(args.front(), args.data());
    ::_exit(127);
  }
  ::close(out);
  return child;
}

std::string last_lines(const std::filesystem::path& file, std::size_t lines) {
  std::ifstream in(file);
  std::deque<std::string> kept;
  for (std::string line; std::getline(in, line);) {
    kept.push_back(std::move(line));
    if (kept.size() > lines) kept.pop_front();
  }
  std::string out;
  for (const std::string& line : kept) out += line + "\n";
  return out;
}

}  // namespace prodsafe::embedded
