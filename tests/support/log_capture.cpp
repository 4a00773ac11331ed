#include "support/log_capture.hpp"

#include <spdlog/logger.h>

#include "prodsafe/core/log.hpp"

namespace prodsafe::testing {

class LogCapture::Sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(message, formatted);
    lines_.emplace_back(formatted.data(), formatted.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

LogCapture::LogCapture() : sink_(std::make_shared<Sink>()) {
  auto captured = std::make_shared<spdlog::logger>(kLoggerName, sink_);
  captured->set_level(spdlog::level::trace);
  set_logger(std::move(captured));
}

LogCapture::~LogCapture() { set_logger(nullptr); }

std::vector<std::string> LogCapture::lines() const { return sink_->lines(); }

std::string LogCapture::text() const {
  std::string all;
  for (const std::string& line : lines()) all += line;
  return all;
}

}  // namespace prodsafe::testing
