// Runs the prodsafe CLI as a user would, through the shell: its exit code and
// what it printed (stdout and stderr together). PRODSAFE_CLI is the path the
// build gives the test binary.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace prodsafe::testing {

struct CliRun {
  int exit_code = -1;  // -1: killed by a signal, or the shell could not start
  std::string out;     // stdout and stderr together
};

// Runs a shell command line.
inline CliRun run_cli_command(const std::string& command_line) {
  const std::string command = command_line + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  CliRun run;
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer{};
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    run.out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// `prodsafe <arguments>`, with `environment` ("NAME=value ...") set for it.
inline CliRun run_cli(const std::string& arguments, const std::string& environment = "") {
  return run_cli_command((environment.empty() ? "" : "env " + environment + " ") + PRODSAFE_CLI +
                         " " + arguments);
}

}  // namespace prodsafe::testing
