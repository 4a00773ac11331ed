#include "cgroup_memory.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string_view>

namespace prodsafe::runtime_checks {
namespace {

namespace fs = std::filesystem;

// v1 reports "no limit" as the largest page-aligned long (9223372036854771712);
// no machine has 2^62 bytes.
constexpr long long kUnlimitedAbove = 1LL << 62;

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  return text;
}

// A limit file's value; nullopt for "max", v1's unlimited, or anything else.
std::optional<long long> limit_in(const fs::path& file) {
  const auto text = read_file(file);
  if (!text) return std::nullopt;
  const std::string_view value = trimmed(*text);
  long long bytes = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), bytes);
  if (error != std::errc() || end != value.data() + value.size()) return std::nullopt;
  if (bytes <= 0 || bytes >= kUnlimitedAbove) return std::nullopt;
  return bytes;
}

bool is_pid(const std::string& pid) {
  return pid == "self" || (!pid.empty() && std::all_of(pid.begin(), pid.end(), [](char c) {
           return c >= '0' && c <= '9';
         }));
}

// The tightest limit in `file_name` from `relative` (the cgroup's path under
// the mount) up to the mount's root.
std::optional<CgroupMemoryLimit> tightest(const fs::path& root, const fs::path& mount,
                                          fs::path relative, const char* file_name) {
  std::optional<CgroupMemoryLimit> found;
  while (true) {
    const fs::path file = mount / relative / file_name;
    if (const auto bytes = limit_in(root / file.relative_path());
        bytes && (!found || *bytes < found->bytes)) {
      found = CgroupMemoryLimit{.bytes = *bytes, .source = file.lexically_normal().string()};
    }
    if (relative.empty() || relative == relative.parent_path()) return found;
    relative = relative.parent_path();
  }
}

}  // namespace

std::optional<CgroupMemoryLimit> cgroup_memory_limit(const fs::path& root, const std::string& pid) {
  if (!is_pid(pid)) return std::nullopt;
  const auto membership = read_file(root / "proc" / pid / "cgroup");
  if (!membership) return std::nullopt;
  // Lines "<id>:<controllers>:<path>": v1 names "memory" among the
  // controllers; v2's single hierarchy is "0::<path>".
  std::optional<std::string> v1_path;
  std::optional<std::string> v2_path;
  std::istringstream lines(*membership);
  for (std::string line; std::getline(lines, line);) {
    const auto first = line.find(':');
    const auto second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (line.compare(0, first, "0") == 0 && controllers.empty()) {
      v2_path = path;
      continue;
    }
    std::istringstream names(controllers);
    for (std::string name; std::getline(names, name, ',');) {
      if (name == "memory") v1_path = path;
    }
  }
  // The path is relative to the mount; without a cgroup namespace a container
  // sees the host's path, which its mount does not hold: use the mount's root.
  const auto under_mount = [&](const fs::path& mount, const std::string& path) {
    fs::path relative = fs::path(path).relative_path();
    if (!fs::exists(root / mount.relative_path() / relative)) relative.clear();
    return relative;
  };
  if (v1_path) {
    const fs::path mount = "/sys/fs/cgroup/memory";
    return tightest(root, mount, under_mount(mount, *v1_path), "memory.limit_in_bytes");
  }
  if (v2_path) {
    const fs::path mount = "/sys/fs/cgroup";
    return tightest(root, mount, under_mount(mount, *v2_path), "memory.max");
  }
  return std::nullopt;
}

std::optional<std::string> local_redis_pid(const fs::path& root, const redis::Info& info,
                                           const redis::Endpoint& endpoint) {
  const bool loopback = endpoint.transport == redis::Endpoint::Transport::kUnix ||
                        endpoint.host == "localhost" || endpoint.host == "::1" ||
                        endpoint.host.starts_with("127.");
  const auto pid = info.number("process_id");
  if (!loopback || !pid || *pid <= 0) return std::nullopt;
  const std::string pid_text = std::to_string(*pid);
  const auto comm = read_file(root / "proc" / pid_text / "comm");
  if (!comm) return std::nullopt;
  // comm holds at most 15 characters of the executable's name.
  const std::string executable =
      fs::path(info.get("executable").value_or("redis-server")).filename().string().substr(0, 15);
  if (executable.empty() || trimmed(*comm) != executable) return std::nullopt;
  return pid_text;
}

}  // namespace prodsafe::runtime_checks
