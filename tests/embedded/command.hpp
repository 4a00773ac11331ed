// Runs a command-line tool (openssl, redis-cli) for a test, bounded in time.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "prodsafe/embedded/child_process.hpp"

namespace prodsafe::embedded::testing {

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

// Runs argv (argv[0] looked up in PATH); a command still running after
// `timeout` is killed and fails the test with an IoError.
inline CommandResult run_command(std::vector<std::string> argv,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  static std::atomic<int> counter{0};
  const std::filesystem::path found = find_executable(argv.front());
  if (!found.empty()) argv.front() = found.string();
  const std::filesystem::path output =
      std::filesystem::temp_directory_path() /
      fmt::format("prodsafe-command-{}-{}.out", ::getpid(), counter++);
  CommandResult result;
  result.status = run_child(argv, output, timeout);
  std::ifstream in(output);
  result.output.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  std::filesystem::remove(output);
  return result;
}

}  // namespace prodsafe::embedded::testing
