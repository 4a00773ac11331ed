// Reading a process's cgroup memory limit, from fake /proc and /sys/fs/cgroup
// trees in a temporary directory: cgroup v2, v1 (and the hybrid layout), a
// container's own view, limits set on a parent, and "unlimited".
#include "cgroup_memory.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace prodsafe::runtime_checks {
namespace {

namespace fs = std::filesystem;

class FakeRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "prodsafe-cgroup-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override { fs::remove_all(root_); }

  void write(const std::string& path, const std::string& text) {
    const fs::path file = root_ / path;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
  }
  [[nodiscard]] std::optional<long long> limit(const std::string& pid = "42") const {
    const auto found = cgroup_memory_limit(root_, pid);
    return found ? std::optional<long long>(found->bytes) : std::nullopt;
  }

  fs::path root_;
};

constexpr long long kGiB = 1LL << 30;

TEST_F(FakeRoot, V2ReadsTheProcesssCgroupAndNamesTheFile) {
  write("proc/42/cgroup", "0::/system.slice/redis-server.service\n");
  write("sys/fs/cgroup/cgroup.controllers", "cpu memory pids\n");
  write("sys/fs/cgroup/system.slice/memory.max", "max\n");
  write("sys/fs/cgroup/system.slice/redis-server.service/memory.max", "1073741824\n");
  const auto found = cgroup_memory_limit(root_, "42");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->bytes, kGiB);
  EXPECT_EQ(found->source, "/sys/fs/cgroup/system.slice/redis-server.service/memory.max");
}

TEST_F(FakeRoot, V2ATighterLimitOnAParentWins) {
  write("proc/42/cgroup", "0::/kubepods/pod1/redis\n");
  write("sys/fs/cgroup/kubepods/pod1/memory.max", "536870912\n");
  write("sys/fs/cgroup/kubepods/pod1/redis/memory.max", "1073741824\n");
  const auto found = cgroup_memory_limit(root_, "42");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->bytes, kGiB / 2);
  EXPECT_EQ(found->source, "/sys/fs/cgroup/kubepods/pod1/memory.max");
}

TEST_F(FakeRoot, V2UnlimitedEverywhereIsNoLimit) {
  write("proc/42/cgroup", "0::/user.slice\n");
  write("sys/fs/cgroup/user.slice/memory.max", "max\n");
  EXPECT_EQ(limit(), std::nullopt);
}

TEST_F(FakeRoot, InsideAContainerTheMountRootIsTheContainersCgroup) {
  // With a cgroup namespace the process sees "/"; without one it sees the
  // host's path, which does not exist under the container's mount.
  write("sys/fs/cgroup/memory.max", "268435456\n");
  write("proc/1/cgroup", "0::/\n");
  EXPECT_EQ(limit("1"), 256LL << 20);
  write("proc/7/cgroup", "0::/docker/0123abcd\n");
  EXPECT_EQ(limit("7"), 256LL << 20);
}

TEST_F(FakeRoot, V1AndTheHybridLayoutReadTheMemoryController) {
  write("proc/42/cgroup", "9:name=systemd:/\n4:memory:/process_api/abc\n3:cpu,cpuacct:/\n0::/\n");
  write("sys/fs/cgroup/unified/cgroup.controllers", "");
  write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  write("sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes", "2147483648\n");
  const auto found = cgroup_memory_limit(root_, "42");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->bytes, 2 * kGiB);
  EXPECT_EQ(found->source, "/sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes");
}

TEST_F(FakeRoot, V1UnlimitedIsNoLimit) {
  write("proc/42/cgroup", "4:memory,hugetlb:/\n");
  write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  EXPECT_EQ(limit(), std::nullopt);
}

TEST_F(FakeRoot, MissingOrGarbledFilesAreNoLimit) {
  EXPECT_EQ(limit(), std::nullopt) << "no such process";
  write("proc/42/cgroup", "0::/a\n");
  EXPECT_EQ(limit(), std::nullopt) << "no memory.max anywhere";
  write("sys/fs/cgroup/a/memory.max", "lots\n");
  EXPECT_EQ(limit(), std::nullopt);
  write("sys/fs/cgroup/a/memory.max", "-5\n");
  EXPECT_EQ(limit(), std::nullopt);
  write("proc/42/cgroup", "garbage without colons\n");
  EXPECT_EQ(limit(), std::nullopt);
  EXPECT_EQ(limit("../../etc"), std::nullopt) << "a pid is digits or \"self\"";
}

// INFO's process_id names a process on this machine only when Redis was
// reached over loopback or a unix socket and that pid here is a redis-server.
TEST_F(FakeRoot, RedisIsLocalOnlyOverLoopbackAndWhenThePidIsARedisServer) {
  write("proc/42/comm", "redis-server\n");
  const redis::Info info({{"process_id", "42"}, {"executable", "/usr/bin/redis-server"}});
  redis::Endpoint loopback;  // 127.0.0.1
  EXPECT_EQ(local_redis_pid(root_, info, loopback), "42");
  redis::Endpoint localhost;
  localhost.host = "localhost";
  EXPECT_EQ(local_redis_pid(root_, info, localhost), "42");
  redis::Endpoint socket;
  socket.transport = redis::Endpoint::Transport::kUnix;
  socket.socket_path = "/run/redis.sock";
  EXPECT_EQ(local_redis_pid(root_, info, socket), "42");

  redis::Endpoint remote;
  remote.host = "10.0.0.5";
  EXPECT_EQ(local_redis_pid(root_, info, remote), std::nullopt) << "pid 42 there is not ours";
  EXPECT_EQ(local_redis_pid(root_, redis::Info(), loopback), std::nullopt) << "no process_id";
  EXPECT_EQ(
      local_redis_pid(root_, redis::Info({{"process_id", "43"}, {"executable", "redis-server"}}),
                      loopback),
      std::nullopt)
      << "no such process here";
  write("proc/42/comm", "python3\n");
  EXPECT_EQ(local_redis_pid(root_, info, loopback), std::nullopt)
      << "a pid of another PID namespace (Redis in a container) names another program here";
  write("proc/42/comm", "valkey-server\n");
  EXPECT_EQ(local_redis_pid(
                root_, redis::Info({{"process_id", "42"}, {"executable", "/opt/valkey-server"}}),
                loopback),
            "42");
}

}  // namespace
}  // namespace prodsafe::runtime_checks
