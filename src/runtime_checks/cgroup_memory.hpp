// The memory limit of the cgroup a process runs in, read from /proc and
// /sys/fs/cgroup (cgroup v2, v1 and the hybrid layout), for the memory
// headroom check: inside a container, Redis's INFO total_system_memory is the
// machine's memory, not what the container may use before the OOM killer
// ends it.
//
// Every function takes the root directory the files are read under ("/" in
// production), so tests run them against fake trees.
//
// Thread safety: pure functions of the files they read.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/info.hpp"

namespace prodsafe::runtime_checks {

struct CgroupMemoryLimit {
  long long bytes = 0;
  // The file the limit was read from, as an absolute path on the machine
  // (e.g. "/sys/fs/cgroup/system.slice/redis-server.service/memory.max").
  std::string source{};
};

// The tightest memory limit on process `pid` ("self" or digits): its cgroup's
// and every ancestor's up to the mount (v2: <root>/sys/fs/cgroup/<path>/
// memory.max; v1: <root>/sys/fs/cgroup/memory/<path>/memory.limit_in_bytes),
// the cgroup taken from <root>/proc/<pid>/cgroup. A path that does not exist
// under the mount (a container without a cgroup namespace sees the host's
// path) falls back to the mount's root, which is then the container's cgroup.
// nullopt when unlimited ("max", or v1's near-2^63 value) or unreadable.
[[nodiscard]] std::optional<CgroupMemoryLimit> cgroup_memory_limit(
    const std::filesystem::path& root, const std::string& pid);

// The pid, on this machine, of the Redis that answered INFO, when it runs
// here in this PID namespace: reached over loopback ("localhost",
// 127.0.0.0/8, ::1) or a unix socket, and INFO's process_id here is a process
// whose name (/proc/<pid>/comm) is the basename of INFO's `executable`
// (redis-server when INFO lacks it). nullopt otherwise: the cgroup of a Redis
// on another machine, or in a container with its own PID namespace, cannot be
// seen from here.
[[nodiscard]] std::optional<std::string> local_redis_pid(const std::filesystem::path& root,
                                                         const redis::Info& info,
                                                         const redis::Endpoint& endpoint);

}  // namespace prodsafe::runtime_checks
