// The private redis-server: start, kill, pause, restart, clean-up, failures.
#include "prodsafe/embedded/redis_server.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/child_process.hpp"
#include "prodsafe/redis/client.hpp"
#include "support/descriptor_limit.hpp"

namespace prodsafe::embedded {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

redis::Options fast() {
  return {.connect_timeout = 300ms, .command_timeout = 300ms, .reconnect_backoff_initial = 0ms};
}

bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_text, name, state;
  stat >> pid_text >> name >> state;
  return state == "Z";  // a zombie waiting for its new parent to reap it
}

TEST(RedisServerTest, StartsOnALoopbackPortInItsOwnDirectory) {
  fs::path directory;
  {
    RedisServer server;
    directory = server.directory();
    EXPECT_TRUE(server.running());
    EXPECT_GT(server.port(), 0);
    EXPECT_EQ(server.url(), "redis://127.0.0.1:" + std::to_string(server.port()));
    EXPECT_TRUE(fs::exists(directory / "redis.conf"));
    redis::Client client(server.url());
    EXPECT_EQ(client.ping(), "PONG");
    EXPECT_THROW((void)server.unix_url(), InvalidArgument);
  }
  EXPECT_FALSE(fs::exists(directory)) << "the directory should be removed";
}

TEST(RedisServerTest, TwoServersAreIndependent) {
  RedisServer a;
  RedisServer b;
  EXPECT_NE(a.port(), b.port());
  EXPECT_NE(a.directory(), b.directory());
  redis::Client(a.url()).set("k", "a");
  EXPECT_EQ(redis::Client(b.url()).get("k"), std::nullopt);
}

TEST(RedisServerTest, ExtraConfigWins) {
  RedisServer server({.config = {"maxmemory-policy allkeys-lru", "maxmemory 10mb"}});
  redis::Client client(server.url());
  const redis::Reply reply = client.command({"CONFIG", "GET", "maxmemory-policy"});
  EXPECT_EQ(reply.array().at(1).str(), "allkeys-lru");
}

TEST(RedisServerTest, UnixSocket) {
  RedisServer server({.unix_socket = true});
  EXPECT_TRUE(fs::exists(server.socket_path()));
  redis::Client client(server.unix_url());
  EXPECT_EQ(client.ping(), "PONG");
}

TEST(RedisServerTest, KillAndRestartKeepsFsyncedAofData) {
  RedisServer server({.config = {"appendonly yes", "appendfsync always"}});
  redis::Client client(server.url(), fast());
  for (int i = 0; i < 100; ++i) client.incr("n");
  const int port = server.port();
  server.kill();
  EXPECT_FALSE(server.running());
  EXPECT_THROW(client.ping(), StoreUnavailable);
  server.restart();
  EXPECT_EQ(server.port(), port);
  EXPECT_EQ(client.get("n"), "100");
}

TEST(RedisServerTest, KillWithoutPersistenceLosesData) {
  RedisServer server;
  redis::Client client(server.url(), fast());
  client.set("k", "v");
  server.restart();
  EXPECT_EQ(client.get("k"), std::nullopt);
}

TEST(RedisServerTest, StopShutsDownCleanlyAndWritesSnapshot) {
  RedisServer server({.config = {"save 3600 1"}});
  redis::Client client(server.url(), fast());
  client.set("k", "v");
  server.stop();
  EXPECT_FALSE(server.running());
  EXPECT_TRUE(fs::exists(server.directory() / "dump.rdb"));
  server.restart();
  EXPECT_EQ(client.get("k"), "v");
}

TEST(RedisServerTest, PauseAndResume) {
  RedisServer server;
  redis::Client client(server.url(), fast());
  EXPECT_EQ(client.ping(), "PONG");
  server.pause();
  EXPECT_TRUE(server.paused());
  EXPECT_THROW(client.ping(), Timeout);
  server.resume();
  EXPECT_FALSE(server.paused());
  EXPECT_EQ(client.ping(), "PONG");
}

TEST(RedisServerTest, KillWhilePausedWorks) {
  RedisServer server;
  server.pause();
  server.kill();
  EXPECT_FALSE(server.running());
  server.restart();
  EXPECT_EQ(redis::Client(server.url()).ping(), "PONG");
}

TEST(RedisServerTest, PauseWhenNotRunningIsRefused) {
  RedisServer server;
  server.kill();
  EXPECT_THROW(server.pause(), InvalidArgument);
  EXPECT_THROW(server.resume(), InvalidArgument);
}

// The error thrown by `start`, when it is an `Expected` (checked not to be
// retryable: a local failure or a configuration to fix is not an unreachable
// store); empty, with a test failure, otherwise.
template <class Expected, class Start>
std::string local_failure(Start&& start) {
  try {
    start();
    ADD_FAILURE() << "nothing thrown";
  } catch (const Expected& error) {
    EXPECT_FALSE(error.retryable()) << error.what();
    return error.what();
  } catch (const std::exception& error) {
    ADD_FAILURE() << "expected " << to_string(Expected("").code()) << ", got: " << error.what();
  }
  return {};
}

TEST(RedisServerTest, MissingExecutableIsAConfigErrorSayingHowToInstallIt) {
  const std::string text = local_failure<ConfigError>(
      [] { RedisServer server({.executable = "redis-server-that-does-not-exist"}); });
  EXPECT_NE(text.find("not in PATH"), std::string::npos) << text;
  EXPECT_NE(text.find("redis-server"), std::string::npos) << text;
  const std::string path = local_failure<ConfigError>(
      [] { RedisServer server({.executable = "/nonexistent/redis-server"}); });
  EXPECT_NE(path.find("/nonexistent/redis-server"), std::string::npos) << path;
}

// Sets $TMPDIR, where RedisServer makes its directory, for one scope.
class TemporaryDirectoryVariable {
 public:
  explicit TemporaryDirectoryVariable(const std::string& value) {
    if (const char* saved = std::getenv("TMPDIR")) saved_ = saved;
    ::setenv("TMPDIR", value.c_str(), 1);
  }
  ~TemporaryDirectoryVariable() {
    if (saved_) {
      ::setenv("TMPDIR", saved_->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }

 private:
  std::optional<std::string> saved_;
};

TEST(RedisServerTest, ADirectoryThatCannotBeMadeIsAnIoError) {
  std::string text;
  {
    TemporaryDirectoryVariable tmpdir("/nonexistent-prodsafe-tmp");
    text = local_failure<IoError>([] { RedisServer server; });
  }
  EXPECT_NE(text.find("/nonexistent-prodsafe-tmp"), std::string::npos) << text;
}

// A full disk (here: a file size limit) while writing redis.conf.
TEST(RedisServerTest, AConfigFileThatCannotBeWrittenIsAnIoError) {
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto previous = ::signal(SIGXFSZ, SIG_IGN);
  rlimit limited = saved;
  limited.rlim_cur = 16;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  const std::string text = local_failure<IoError>([] { RedisServer server; });
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, previous);
  EXPECT_NE(text.find("redis.conf"), std::string::npos) << text;
}

TEST(RedisServerTest, NoDescriptorForAPortProbeIsAnIoError) {
  if (prodsafe::testing::kDescriptorLimitBreaksSanitizer) {
    GTEST_SKIP() << prodsafe::testing::kDescriptorLimitSkip;
  }
  // Without descriptors the server's directory cannot be removed either: it
  // is made under a directory removed here.
  std::string parent = (fs::temp_directory_path() / "prodsafe-descriptors-XXXXXX").string();
  ASSERT_NE(::mkdtemp(parent.data()), nullptr);
  std::string text;
  {
    TemporaryDirectoryVariable tmpdir(parent);
    prodsafe::testing::DescriptorLimit limit(0);
    ASSERT_TRUE(limit.ok());
    text = local_failure<IoError>([] { RedisServer server; });
  }
  fs::remove_all(parent);
  EXPECT_NE(text.find("socket"), std::string::npos) << text;
}

TEST(RedisServerTest, BadConfigFailsWithTheServersComplaint) {
  try {
    RedisServer server({.config = {"no-such-directive yes"}});
    FAIL() << "started";
  } catch (const StoreUnavailable& error) {
    const std::string text = error.what();
    EXPECT_NE(text.find("exited during startup"), std::string::npos) << text;
    EXPECT_NE(text.find("no-such-directive"), std::string::npos) << text;
  }
}

TEST(RedisServerTest, ServerDiesWithTheProcessThatStartedIt) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child starts a server and vanishes without running any destructor.
    ::close(fds[0]);
    auto* server = new RedisServer();
    const pid_t redis_pid = server->pid();
    (void)!::write(fds[1], &redis_pid, sizeof redis_pid);
    ::_exit(0);
  }
  ::close(fds[1]);
  pid_t redis_pid = 0;
  ASSERT_EQ(::read(fds[0], &redis_pid, sizeof redis_pid), static_cast<ssize_t>(sizeof redis_pid));
  ::close(fds[0]);
  ::waitpid(child, nullptr, 0);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!process_gone(redis_pid) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(process_gone(redis_pid)) << "redis-server " << redis_pid << " outlived its parent";
}

}  // namespace
}  // namespace prodsafe::embedded

namespace prodsafe::embedded {
namespace {

int wait_exit_code(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(SpawnChildTest, RunsTheProgramWithItsOutputInTheFile) {
  const auto output =
      std::filesystem::temp_directory_path() / fmt::format("prodsafe-spawn-{}.out", ::getpid());
  std::filesystem::remove(output);
  const pid_t pid = spawn_child({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, output);
  EXPECT_EQ(wait_exit_code(pid), 3);
  std::ifstream in(output);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "out\nerr\n");
  EXPECT_EQ(last_lines(output, 1), "err\n");
  EXPECT_EQ(last_lines(output, 5), "out\nerr\n");
  EXPECT_EQ(last_lines(output.string() + ".missing", 5), "");
  std::filesystem::remove(output);
}

TEST(SpawnChildTest, AFailedExecExits127AndBadInputIsRefused) {
  const auto output =
      std::filesystem::temp_directory_path() / fmt::format("prodsafe-spawn-{}.out", ::getpid());
  EXPECT_EQ(wait_exit_code(spawn_child({"/nonexistent/program"}, output)), 127);
  std::filesystem::remove(output);
  EXPECT_THROW(spawn_child({}, output), InvalidArgument);
  try {
    (void)spawn_child({"/bin/true"}, "/nonexistent-dir/out");
    ADD_FAILURE() << "spawned without its output file";
  } catch (const IoError& error) {
    EXPECT_FALSE(error.retryable());
    EXPECT_NE(std::string(error.what()).find("/nonexistent-dir/out"), std::string::npos)
        << error.what();
  } catch (const std::exception& error) {
    ADD_FAILURE() << "expected an IoError, got: " << error.what();
  }
}

}  // namespace
}  // namespace prodsafe::embedded
