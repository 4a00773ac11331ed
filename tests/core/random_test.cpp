// random_id(): claims' holder ids must never repeat, also across fork().
#include "prodsafe/core/random.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace prodsafe {
namespace {

TEST(RandomIdTest, IdsAre32HexDigitsAndDoNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    const std::string id = random_id();
    ASSERT_EQ(id.size(), 32u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    ASSERT_TRUE(seen.insert(id).second) << "repeated: " << id;
  }
}

// A generator seeded once and copied by fork() would hand the child its
// parent's next id.
TEST(RandomIdTest, AForkedChildDrawsOtherIdsThanItsParent) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string id = random_id();
    (void)!::write(fds[1], id.data(), id.size());
    ::_exit(0);
  }
  const std::string mine = random_id();
  char theirs[32] = {};
  ASSERT_EQ(::read(fds[0], theirs, sizeof theirs), 32);
  ::waitpid(child, nullptr, 0);
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_NE(std::string(theirs, 32), mine);
}

}  // namespace
}  // namespace prodsafe
