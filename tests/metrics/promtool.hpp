// `promtool check metrics` (Debian's prometheus package) on a page of the
// Prometheus text format, for the metrics tests.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace prodsafe::metrics::promtool {

struct Checked {
  // promtool's exit code: 0 clean, 3 lint problems only (the page parsed),
  // 1 a page Prometheus cannot parse; -1 when promtool could not be run.
  int exit_code = -1;
  std::string output;

  // Parsed, possibly with lint problems (style: a counter without "_total",
  // camelCase, ':' in a name), which cost nothing at scrape time.
  [[nodiscard]] bool parsed() const {
    return exit_code == 0 ||
           (exit_code == 3 && output.find("error while linting") == std::string::npos);
  }
};

inline Checked promtool_check(const std::string& text) {
  char path[] = "/tmp/prodsafe-metrics-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) return {};
  ::close(fd);
  std::ofstream(path, std::ios::binary) << text;
  const std::string command = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  Checked checked;
  if (pipe == nullptr) {
    std::remove(path);
    return checked;
  }
  std::array<char, 4096> buffer{};
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    checked.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  checked.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::remove(path);
  return checked;
}

}  // namespace prodsafe::metrics::promtool
