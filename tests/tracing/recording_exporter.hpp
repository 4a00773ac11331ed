// Test-only: a span exporter that keeps every span it is given, in order.
#pragma once

#include <mutex>
#include <utility>
#include <vector>

#include "prodsafe/tracing/tracer.hpp"

namespace prodsafe::tracing::testing {

class RecordingExporter : public SpanExporter {
 public:
  void export_span(SpanData span) noexcept override {
    std::lock_guard lock(mutex_);
    spans_.push_back(std::move(span));
  }
  std::vector<SpanData> spans() {
    std::lock_guard lock(mutex_);
    return spans_;
  }

 private:
  std::mutex mutex_;
  std::vector<SpanData> spans_;
};

}  // namespace prodsafe::tracing::testing
