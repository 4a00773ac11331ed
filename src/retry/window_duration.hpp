// What both window stores do to a window they hand out.
#pragma once

#include <chrono>

#include "prodsafe/retry/retry_window.hpp"

namespace prodsafe::retry {

// duration = last_attempt - first_attempt.
inline void set_duration(RetryWindow& window) {
  window.duration = std::chrono::duration_cast<std::chrono::milliseconds>(window.last_attempt -
                                                                          window.first_attempt);
}

}  // namespace prodsafe::retry
