// Test-only: captures what prodsafe logs while it is alive.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <spdlog/sinks/base_sink.h>

namespace prodsafe::testing {

class LogCapture {
 public:
  LogCapture();   // installs a capturing logger at level trace
  ~LogCapture();  // restores the default logger

  [[nodiscard]] std::vector<std::string> lines() const;
  [[nodiscard]] std::string text() const;

 private:
  class Sink;
  std::shared_ptr<Sink> sink_;
};

}  // namespace prodsafe::testing
