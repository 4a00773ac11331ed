// A private redis-server for tests, the chaos suite and the CLI's embedded
// default: started from PATH on a free loopback port (and optionally a unix
// socket) in a fresh temporary directory, and controlled like a real failure
// would: kill (SIGKILL), pause/resume (SIGSTOP/SIGCONT), restart on the same
// port and data directory. With RedisServerOptions::tls it serves TLS; with
// RedisServerOptions::sentinel it runs as a Sentinel (sentinel_topology.hpp
// builds whole topologies from these).
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
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace prodsafe::embedded {

// TLS for the server: redis.conf gets tls-port, tls-cert-file, tls-key-file,
// tls-ca-cert-file and tls-auth-clients. redis-server reads the files at every
// (re)start, so replacing them and calling restart() rotates them.
// make_test_certificates() (test_certificates.hpp) makes a set.
struct RedisServerTls {
  // The server's certificate (chain) and private key, PEM. Required.
  std::filesystem::path cert_file{};
  std::filesystem::path key_file{};
  // The CA certificates, PEM, that client certificates are verified against.
  // Required when auth_clients is true. Default: none.
  std::filesystem::path ca_file{};
  // Demand a client certificate signed by ca_file (tls-auth-clients yes):
  // clients without one are refused. Default: false (tls-auth-clients no).
  bool auth_clients = false;
  // Listen on the TLS port only (port 0 in redis.conf): port() is the TLS
  // port and url() is rediss://. When false, also listen on a plain port:
  // port() and url() are plain, tls_port() and tls_url() are TLS.
  // Default: true.
  bool tls_only = true;
};

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
  // Serve TLS (see RedisServerTls). Default: none, plain TCP only. The unix
  // socket, when asked for, is always plain. A TLS-only server is ready when
  // its log says "Ready to accept connections" and its port accepts
  // connections, so the config must not move the log (`logfile`).
  std::optional<RedisServerTls> tls{};
  // Run as a Sentinel (`redis-server redis.conf --sentinel`); `config` then
  // holds the `sentinel monitor ...` lines. Sentinel rewrites redis.conf with
  // what it learns (the other sentinels, the current master, its epochs), so
  // restart() keeps that file instead of writing it afresh. Readiness is
  // still PING on port(). Default: false.
  bool sentinel = false;
  // Run as a Redis Cluster node: `cluster-enabled yes`, nodes.conf in the
  // directory (kept across restart()), and the cluster bus on a second free
  // loopback port, cluster_bus_port() (`cluster-port`): the default, port +
  // 10000, is out of range for most ephemeral ports. redis_cluster.hpp joins
  // such nodes into a cluster. Default: false.
  bool cluster = false;
};

class RedisServer {
 public:
  // Starts the server and waits until it answers. Throws ConfigError when the
  // executable or a TLS file is not found (or auth_clients has no ca_file),
  // IoError when its directory, its redis.conf, a port probe or the process
  // cannot be made, and StoreUnavailable (with the tail of the server's log)
  // when the server exits or does not answer within startup_timeout.
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // redis://127.0.0.1:<port>, or rediss://127.0.0.1:<port> for a TLS-only
  // server.
  [[nodiscard]] std::string url() const;
  // rediss://127.0.0.1:<tls_port> (requires options.tls).
  [[nodiscard]] std::string tls_url() const;
  // unix://<directory>/redis.sock (requires options.unix_socket).
  [[nodiscard]] std::string unix_url() const;
  // The port url() names: plain, or TLS for a TLS-only server.
  [[nodiscard]] int port() const noexcept { return port_; }
  // The TLS port (port() for a TLS-only server); 0 without options.tls.
  [[nodiscard]] int tls_port() const noexcept { return tls_port_; }
  // The cluster bus port; 0 without options.cluster.
  [[nodiscard]] int cluster_bus_port() const noexcept { return cluster_bus_port_; }
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
  // the same data directory and waits until it answers. redis.conf is
  // written afresh from the options, except for a Sentinel (see
  // RedisServerOptions::sentinel).
  void restart();

  // The last `lines` lines of the server's log.
  [[nodiscard]] std::string log_tail(std::size_t lines = 20) const;

 private:
  // Writes redis.conf (when `write_config`) and starts the process.
  void launch(bool write_config);
  void wait_until_ready();
  [[nodiscard]] bool answers_ping(std::string& last_error) const;
  [[nodiscard]] bool tls_ready(std::string& last_error) const;
  [[nodiscard]] bool tls_only() const noexcept { return options_.tls && options_.tls->tls_only; }
  void reap(int signal);

  RedisServerOptions options_;
  std::filesystem::path directory_;
  std::filesystem::path executable_;
  int port_ = 0;
  int tls_port_ = 0;
  int cluster_bus_port_ = 0;
  // The size of redis.log when the server was last launched: the readiness
  // check of a TLS-only server reads only what that run wrote.
  std::uintmax_t log_offset_ = 0;
  pid_t pid_ = -1;
  bool paused_ = false;
};

}  // namespace prodsafe::embedded
