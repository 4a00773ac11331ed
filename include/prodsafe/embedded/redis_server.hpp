// A private redis-server for tests, the chaos suite and the CLI's embedded
// default: started from PATH on a free loopback port (and optionally a unix
// socket) in a fresh temporary directory, and controlled like a real failure
// would: kill (SIGKILL), pause/resume (SIGSTOP/SIGCONT), restart on the same
// port and data directory.
//
// The destructor kills the server and removes its directory, also when a test
// fails; the server is also killed if the process that started it dies.
//
// Thread safety: not safe for concurrent use; drive one server from one thread
// at a time. Create it from a thread that outlives it: the server is killed
// when the thread that started it exits (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace prodsafe::embedded {

struct RedisServerOptions {
  // Extra redis.conf lines, written after prodsafe's defaults so they win
  // (e.g. "appendonly yes", "maxmemory-policy allkeys-lru"). Default: none.
  // prodsafe's defaults: bind 127.0.0.1, protected-mode no, save "" (no RDB
  // snapshots), appendonly no, logfile redis.log in the directory.
  std::vector<std::string> config{};
  // Also listen on <directory>/redis.sock. Default: false.
  bool unix_socket = false;
  // How long start() and restart() wait for the server to answer PING.
  // Default: 10 s.
  std::chrono::milliseconds startup_timeout{10000};
  // The executable, looked up in PATH when it has no '/'. Default: redis-server.
  std::string executable = "redis-server";
  // Keep the directory (data, config, log) after destruction, for debugging.
  // Default: false.
  bool keep_directory = false;
};

class RedisServer {
 public:
  // Starts the server and waits until it answers. Throws ConfigError when the
  // executable is not found, IoError when its directory, its redis.conf, a
  // port probe or the process cannot be made, and StoreUnavailable (with the
  // tail of the server's log) when the server exits or does not answer within
  // startup_timeout.
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // redis://127.0.0.1:<port>
  [[nodiscard]] std::string url() const;
  // unix://<directory>/redis.sock (requires options.unix_socket).
  [[nodiscard]] std::string unix_url() const;
  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return directory_; }
  [[nodiscard]] std::filesystem::path socket_path() const { return directory_ / "redis.sock"; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  // True between a (re)start and kill()/stop().
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }
  [[nodiscard]] bool paused() const noexcept { return paused_; }

  // SIGKILL, as a crash: nothing is flushed beyond what the fsync policy wrote.
  void kill();
  // SIGTERM, and waits for a clean shutdown (Redis then writes its AOF/RDB).
  void stop();
  // SIGSTOP: the server keeps its sockets but answers nothing.
  void pause();
  // SIGCONT after pause().
  void resume();
  // Kills the server if it runs, then starts it again on the same port with
  // the same data directory and waits until it answers.
  void restart();

  // The last `lines` lines of the server's log.
  [[nodiscard]] std::string log_tail(std::size_t lines = 20) const;

 private:
  void launch();
  void wait_until_ready();
  void reap(int signal);

  RedisServerOptions options_;
  std::filesystem::path directory_;
  std::filesystem::path executable_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool paused_ = false;
};

}  // namespace prodsafe::embedded
