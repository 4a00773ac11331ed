// Makes the next few file descriptors this process asks for fail with EMFILE,
// so a test can provoke a local socket()/eventfd() failure (as root, where
// permissions cannot). Descriptors already open stay usable.
//
//   DescriptorLimit limit(1);  // one more descriptor may be opened, then EMFILE
//
// The soft RLIMIT_NOFILE is restored on destruction. Not thread-safe: the
// limit is process-wide, so nothing else may open descriptors meanwhile.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

namespace prodsafe::testing {

// UBSan (in the ASan build) checks a pointer's memory by writing it to a
// pipe; with no descriptor left, that fails and it reports a false "invalid
// vptr" error. Tests that exhaust descriptors skip there and run in the
// plain and TSan builds:
//   if (kDescriptorLimitBreaksSanitizer) GTEST_SKIP() << kDescriptorLimitSkip;
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kDescriptorLimitBreaksSanitizer = true;
#else
inline constexpr bool kDescriptorLimitBreaksSanitizer = false;
#endif
inline constexpr const char* kDescriptorLimitSkip =
    "UBSan needs a free descriptor (a pipe) to check memory; runs in the plain build";

class DescriptorLimit {
 public:
  explicit DescriptorLimit(int more_allowed) {
    ok_ = ::getrlimit(RLIMIT_NOFILE, &saved_) == 0;
    // The kernel hands out the lowest free number: a limit just above it
    // leaves exactly `more_allowed` descriptors (when the ones above are free).
    const int lowest_free = ::dup(0);
    if (lowest_free < 0) {
      ok_ = false;
      return;
    }
    ::close(lowest_free);
    rlimit limited = saved_;
    limited.rlim_cur = static_cast<rlim_t>(lowest_free + more_allowed);
    ok_ = ok_ && ::setrlimit(RLIMIT_NOFILE, &limited) == 0;
  }
  ~DescriptorLimit() {
    if (ok_) ::setrlimit(RLIMIT_NOFILE, &saved_);
  }
  DescriptorLimit(const DescriptorLimit&) = delete;
  DescriptorLimit& operator=(const DescriptorLimit&) = delete;

  // False when the limit could not be set (the test should say so, not pass).
  [[nodiscard]] bool ok() const noexcept { return ok_; }

 private:
  rlimit saved_{};
  bool ok_ = false;
};

}  // namespace prodsafe::testing
