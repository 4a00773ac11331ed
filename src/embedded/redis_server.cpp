#include "prodsafe/embedded/redis_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/child_process.hpp"
#include "prodsafe/redis/connection.hpp"

namespace prodsafe::embedded {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr int kPortAttempts = 5;

fs::path find_redis_server(const std::string& name) {
  fs::path found = find_executable(name);
  if (!found.empty()) return found;
  if (name.find('/') != std::string::npos) {
    throw ConfigError(fmt::format("cannot start Redis: '{}' is not an executable file", name));
  }
  throw ConfigError(fmt::format(
      "cannot start Redis: '{}' is not in PATH; install the Debian package redis-server "
      "(scripts/bootstrap does) or set RedisServerOptions::executable",
      name));
}

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw IoError(
        fmt::format("cannot find a free loopback port: socket(): {}", std::strerror(errno)));
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) {
    throw IoError(fmt::format("cannot find a free loopback port: {}", std::strerror(saved)));
  }
  return ntohs(address.sin_port);
}

fs::path make_directory() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      (fs::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") / "prodsafe-redis-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw IoError(fmt::format("cannot create a directory for Redis from '{}': {}", pattern,
                              std::strerror(errno)));
  }
  return pattern;
}

void check_tls(const RedisServerTls& tls) {
  const auto check_file = [](const fs::path& file, std::string_view what) {
    if (file.empty()) {
      throw ConfigError(
          fmt::format("cannot start Redis with TLS: RedisServerTls::{} is empty; set "
                      "it (make_test_certificates() makes test certificates)",
                      what));
    }
    std::error_code error;
    if (!fs::is_regular_file(file, error)) {
      throw ConfigError(
          fmt::format("cannot start Redis with TLS: RedisServerTls::{} '{}' is not "
                      "a file; fix the path",
                      what, file.string()));
    }
  };
  check_file(tls.cert_file, "cert_file");
  check_file(tls.key_file, "key_file");
  if (tls.auth_clients || !tls.ca_file.empty()) check_file(tls.ca_file, "ca_file");
}

// A redis.conf argument in double quotes, so that spaces survive.
std::string quoted(const fs::path& path) {
  std::string out = "\"";
  for (const char c : path.string()) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// True when a TCP connection to 127.0.0.1:`port` is accepted.
bool accepts_connections(int port, std::string& last_error) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    last_error = fmt::format("socket(): {}", std::strerror(errno));
    return false;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  if (!ok) last_error = fmt::format("connect to port {}: {}", port, std::strerror(errno));
  ::close(fd);
  return ok;
}

}  // namespace

RedisServer::RedisServer(RedisServerOptions options) : options_(std::move(options)) {
  executable_ = find_redis_server(options_.executable);
  if (options_.tls) {
    check_tls(*options_.tls);
    // redis-server resolves relative paths from its directory, not ours.
    for (fs::path* file :
         {&options_.tls->cert_file, &options_.tls->key_file, &options_.tls->ca_file}) {
      if (!file->empty()) *file = fs::absolute(*file);
    }
  }
  directory_ = make_directory();
  for (int attempt = 1;; ++attempt) {
    try {
      port_ = free_loopback_port();
      if (options_.tls) {
        tls_port_ = port_;
        while (!tls_only() && tls_port_ == port_) tls_port_ = free_loopback_port();
      }
      if (options_.cluster) {
        cluster_bus_port_ = port_;
        while (cluster_bus_port_ == port_ || cluster_bus_port_ == tls_port_) {
          cluster_bus_port_ = free_loopback_port();
        }
      }
      launch(true);
      wait_until_ready();
      return;
    } catch (const Error&) {
      // Another process may have taken the port between our probe and
      // redis-server's bind; try a fresh port a few times.
      const bool port_taken = log_tail(50).find("Address already in use") != std::string::npos;
      if (!port_taken || attempt == kPortAttempts) {
        if (running()) reap(SIGKILL);
        if (!options_.keep_directory) {
          std::error_code ignored;
          fs::remove_all(directory_, ignored);
        }
        throw;
      }
    }
  }
}

RedisServer::~RedisServer() {
  if (running()) reap(SIGKILL);
  if (!options_.keep_directory) {
    std::error_code ignored;
    fs::remove_all(directory_, ignored);
  }
}

std::string RedisServer::url() const {
  return fmt::format("{}://127.0.0.1:{}", tls_only() ? "rediss" : "redis", port_);
}

std::string RedisServer::tls_url() const {
  if (!options_.tls) {
    throw InvalidArgument("RedisServer::tls_url(): start the server with options.tls");
  }
  return fmt::format("rediss://127.0.0.1:{}", tls_port_);
}

std::string RedisServer::unix_url() const {
  if (!options_.unix_socket) {
    throw InvalidArgument("RedisServer::unix_url(): start the server with unix_socket = true");
  }
  return "unix://" + socket_path().string();
}

void RedisServer::launch(bool write_config) {
  if (write_config) {
    std::ofstream conf(directory_ / "redis.conf", std::ios::trunc);
    conf << "port " << (tls_only() ? 0 : port_) << "\n"
         << "bind 127.0.0.1\n"
         << "protected-mode no\n"
         << "daemonize no\n"
         << "dir " << directory_.string() << "\n"
         << "logfile " << (directory_ / "redis.log").string() << "\n"
         << "save \"\"\n"
         << "appendonly no\n";
    if (options_.tls) {
      const RedisServerTls& tls = *options_.tls;
      conf << "tls-port " << tls_port_ << "\n"
           << "tls-cert-file " << quoted(tls.cert_file) << "\n"
           << "tls-key-file " << quoted(tls.key_file) << "\n"
           << "tls-auth-clients " << (tls.auth_clients ? "yes" : "no") << "\n";
      if (!tls.ca_file.empty()) conf << "tls-ca-cert-file " << quoted(tls.ca_file) << "\n";
    }
    if (options_.unix_socket) {
      conf << "unixsocket " << socket_path().string() << "\nunixsocketperm 700\n";
    }
    if (options_.cluster) {
      conf << "cluster-enabled yes\n"
           << "cluster-config-file nodes.conf\n"
           << "cluster-port " << cluster_bus_port_ << "\n";
    }
    for (const std::string& line : options_.config) conf << line << "\n";
    // Flushed before the check: the buffer would hide a failed write (a full
    // disk) until the stream closed, and the server would start half-configured.
    conf.flush();
    if (!conf) {
      throw IoError(fmt::format("cannot write {}: {}", (directory_ / "redis.conf").string(),
                                std::strerror(errno)));
    }
  }
  std::error_code no_log;
  log_offset_ = fs::file_size(directory_ / "redis.log", no_log);
  if (no_log) log_offset_ = 0;
  std::vector<std::string> argv{executable_.string(), (directory_ / "redis.conf").string()};
  if (options_.sentinel) argv.emplace_back("--sentinel");
  pid_ = spawn_child(argv, directory_ / "redis.stdout");
  paused_ = false;
}

void RedisServer::wait_until_ready() {
  const auto deadline = std::chrono::steady_clock::now() + options_.startup_timeout;
  std::string last_error = "no answer yet";
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw StoreUnavailable(
          fmt::format("redis-server exited during startup ({} {}); its output:\n{}{}",
                      WIFEXITED(status) ? "exit status" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                      last_lines(directory_ / "redis.stdout", 20), log_tail(20)));
    }
    if (tls_only() ? tls_ready(last_error) : answers_ping(last_error)) return;
    if (std::chrono::steady_clock::now() > deadline) {
      throw StoreUnavailable(fmt::format(
          "redis-server on port {} did not answer within {} ms (last: {}); its log:\n{}", port_,
          options_.startup_timeout.count(), last_error, log_tail(20)));
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
}

bool RedisServer::answers_ping(std::string& last_error) const {
  redis::Endpoint endpoint;
  endpoint.port = port_;
  const redis::Options probe{.connect_timeout = milliseconds(200),
                             .command_timeout = milliseconds(500)};
  try {
    redis::Connection connection(endpoint, probe);
    const redis::Reply reply = connection.command({"PING"});
    // Any answer but LOADING (still reading its AOF or RDB) means it serves
    // commands; NOAUTH, say, only means it wants a password.
    if (!reply.is_error() || !reply.error_message().starts_with("LOADING")) return true;
    last_error = reply.error_message();
  } catch (const Error& error) {
    last_error = error.what();
  }
  return false;
}

// Without a TLS client to PING with (and possibly without a client
// certificate the server would accept), readiness is what redis-server logs
// once it has loaded its data and serves commands, confirmed by a connection
// to its port.
bool RedisServer::tls_ready(std::string& last_error) const {
  std::ifstream log(directory_ / "redis.log");
  log.seekg(static_cast<std::streamoff>(log_offset_));
  bool logged = false;
  for (std::string line; !logged && std::getline(log, line);) {
    logged = line.find("Ready to accept connections") != std::string::npos;
  }
  if (!logged) {
    last_error = "redis.log does not say \"Ready to accept connections\" yet";
    return false;
  }
  return accepts_connections(tls_port_, last_error);
}

void RedisServer::reap(int signal) {
  if (pid_ <= 0) return;
  ::kill(pid_, signal);
  if (signal != SIGKILL && paused_) ::kill(pid_, SIGCONT);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  paused_ = false;
}

void RedisServer::kill() { reap(SIGKILL); }

void RedisServer::stop() { reap(SIGTERM); }

void RedisServer::pause() {
  if (!running()) throw InvalidArgument("RedisServer::pause(): the server is not running");
  ::kill(pid_, SIGSTOP);
  paused_ = true;
}

void RedisServer::resume() {
  if (!running()) throw InvalidArgument("RedisServer::resume(): the server is not running");
  ::kill(pid_, SIGCONT);
  paused_ = false;
}

void RedisServer::restart() {
  if (running()) reap(SIGKILL);
  // A Sentinel has rewritten redis.conf with its state: keep it.
  launch(!options_.sentinel);
  wait_until_ready();
}

std::string RedisServer::log_tail(std::size_t lines) const {
  return last_lines(directory_ / "redis.log", lines);
}

}  // namespace prodsafe::embedded
