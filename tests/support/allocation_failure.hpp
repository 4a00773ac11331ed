// Makes chosen heap allocations of the calling thread fail with
// std::bad_alloc, to test what code does when memory runs out mid-operation.
//
// A test binary that uses this must list support/allocation_failure.cpp among
// its SOURCES: that file replaces the global operator new and delete (with
// malloc and free) for the whole binary.
//
//   {
//     prodsafe::testing::FailAllocations fail({.size = 3 * sizeof(void*) * 2});
//     EXPECT_THROW(store.record(...), std::bad_alloc);
//   }
#pragma once

#include <cstddef>

namespace prodsafe::testing {

struct AllocationFilter {
  // Fail only allocations of exactly this many bytes; 0: of any size.
  std::size_t size = 0;
  // Let this many matching allocations through before failing.
  std::size_t skip = 0;
  // Fail at most this many matching allocations, then let all through.
  std::size_t count = 1;
};

// While alive, allocations on this thread that match the filter throw
// std::bad_alloc (other threads are not affected). Not nestable.
class FailAllocations {
 public:
  explicit FailAllocations(AllocationFilter filter);
  ~FailAllocations();
  FailAllocations(const FailAllocations&) = delete;
  FailAllocations& operator=(const FailAllocations&) = delete;

  // How many allocations it has failed so far.
  [[nodiscard]] std::size_t failed() const noexcept;
};

}  // namespace prodsafe::testing
