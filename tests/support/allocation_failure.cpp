#include "allocation_failure.hpp"

#include <cstdlib>
#include <new>

namespace prodsafe::testing {
namespace {

struct State {
  bool armed = false;
  AllocationFilter filter{};
  std::size_t seen = 0;    // matching allocations so far
  std::size_t failed = 0;  // of which failed
};

thread_local State state;

bool should_fail(std::size_t size) noexcept {
  if (!state.armed) return false;
  if (state.filter.size != 0 && state.filter.size != size) return false;
  if (state.seen++ < state.filter.skip) return false;
  if (state.failed >= state.filter.count) return false;
  ++state.failed;
  return true;
}

void* allocate(std::size_t size) {
  if (should_fail(size)) throw std::bad_alloc();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

}  // namespace

FailAllocations::FailAllocations(AllocationFilter filter) {
  state = State{.armed = true, .filter = filter};
}

FailAllocations::~FailAllocations() { state.armed = false; }

std::size_t FailAllocations::failed() const noexcept { return state.failed; }

}  // namespace prodsafe::testing

// The replaceable global allocation functions ([new.delete]); the aligned and
// nothrow forms keep the library's defaults, which pair among themselves.
void* operator new(std::size_t size) { return prodsafe::testing::allocate(size); }
void* operator new[](std::size_t size) { return prodsafe::testing::allocate(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
