// The checks on INFO values no sane server reports but a broken or hostile
// one can (found while writing fuzz/info_fuzz.cpp, confirmed by it under
// UBSan): they must give a result, never compute with undefined behaviour.
#include <gtest/gtest.h>

#include "checks.hpp"

namespace prodsafe::runtime_checks {
namespace {

// Before the fix, maxmemory - used_memory overflowed (signed, undefined); in
// practice it wrapped, and the check reported CRITICAL from garbage.
TEST(InfoInputTest, ANegativeUsedMemoryIsNotReportedMemory) {
  ServerFacts facts;
  facts.info =
      redis::Info({{"used_memory", "-9223372036854775807"}, {"maxmemory", "9223372036854775807"}});
  const CheckResult result = check_memory_headroom(facts, ValidatorOptions{});
  EXPECT_EQ(result.level, Level::kWarning) << result.observed;
  EXPECT_EQ(result.observed, "used_memory or the limit not in INFO");
}

}  // namespace
}  // namespace prodsafe::runtime_checks
