// command_timeout is a deadline for the whole reply, whatever the server and
// the process's signals do: a server that drips its reply byte by byte, and a
// signal that interrupts every wait, cannot stretch it.
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/connection.hpp"
#include "support/redis_fixture.hpp"

namespace prodsafe::redis {
namespace {

using namespace std::chrono_literals;
using std::chrono::steady_clock;

// A server on 127.0.0.1 that answers every connection, after reading its
// first bytes, with a bulk string header and then one byte every `interval`,
// for at most `limit`.
class DrippingServer {
 public:
  explicit DrippingServer(std::chrono::milliseconds interval, std::chrono::milliseconds limit)
      : interval_(interval), limit_(limit) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(listener_, 4) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~DrippingServer() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  void serve() {
    while (!stop_) {
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      char request[256];
      (void)::recv(client, request, sizeof request, 0);
      (void)::send(client, "$100000\r\n", 9, MSG_NOSIGNAL);
      const auto end = steady_clock::now() + limit_;
      while (!stop_ && steady_clock::now() < end) {
        if (::send(client, "x", 1, MSG_NOSIGNAL) != 1) break;
        std::this_thread::sleep_for(interval_);
      }
      ::close(client);
    }
  }

  std::chrono::milliseconds interval_;
  std::chrono::milliseconds limit_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(DeadlineTest, ADrippingReplyEndsAtTheCommandTimeout) {
  DrippingServer server(50ms, 5s);
  Client client(server.url(), {.connect_timeout = 1s, .command_timeout = 500ms});
  const auto start = steady_clock::now();
  try {
    (void)client.command({"GET", "k"});
    FAIL() << "the reply was never complete, yet the command returned";
  } catch (const Timeout& error) {
    EXPECT_NE(std::string(error.what()).find("command_timeout"), std::string::npos) << error.what();
  }
  const auto took = steady_clock::now() - start;
  EXPECT_GE(took, 450ms);
  EXPECT_LT(took, 900ms) << "a 500 ms command_timeout took "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                         << " ms";
}

// A unix socket whose listen backlog is full refuses connect() with EAGAIN
// (the connection was never started): that must wait for the connect
// timeout, not count as connected.
TEST(DeadlineTest, AUnixSocketWithAFullBacklogTimesOutAtTheConnectTimeout) {
  const std::string path =
      ::testing::TempDir() + "prodsafe-backlog-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 0), 0);  // never accepts
  int timeouts = 0;
  for (int i = 0; i < 4; ++i) {
    const auto start = steady_clock::now();
    try {
      Connection connection(parse_url("unix://" + path),
                            {.connect_timeout = 200ms, .command_timeout = 200ms});
      // The backlog took this one (the kernel queues a few): it connected.
    } catch (const Timeout&) {
      ++timeouts;
      const auto took = steady_clock::now() - start;
      EXPECT_GE(took, 190ms);
      EXPECT_LT(took, 600ms);
    }
  }
  EXPECT_GT(timeouts, 0) << "every connect to a full backlog 'succeeded'";
  ::close(listener);
  ::unlink(path.c_str());
}

extern "C" void count_signal(int) {}

// Sends SIGALRM to one thread every `interval` until destroyed (or `limit`).
class SignalStorm {
 public:
  SignalStorm(pthread_t target, std::chrono::milliseconds interval, std::chrono::milliseconds limit)
      : thread_([=, this] {
          const auto end = steady_clock::now() + limit;
          while (!stop_ && steady_clock::now() < end) {
            ::pthread_kill(target, SIGALRM);
            std::this_thread::sleep_for(interval);
          }
        }) {}
  ~SignalStorm() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

using SignalDeadlineTest = prodsafe::testing::RedisTest;

// The handler is installed without SA_RESTART, so every blocking call the
// client makes returns EINTR; each retry must wait only for what is left.
TEST_F(SignalDeadlineTest, ASignalStormDoesNotRestartTheCommandTimeout) {
  struct sigaction action {};
  struct sigaction previous {};
  action.sa_handler = count_signal;
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(::sigaction(SIGALRM, &action, &previous), 0);
  auto client = make_client({.connect_timeout = 500ms, .command_timeout = 500ms});
  ASSERT_EQ(client->ping(), "PONG");
  server().pause();
  const auto start = steady_clock::now();
  {
    SignalStorm storm(::pthread_self(), 20ms, 4s);
    EXPECT_THROW((void)client->ping(), Timeout);
  }
  const auto took = steady_clock::now() - start;
  server().resume();
  ::sigaction(SIGALRM, &previous, nullptr);
  EXPECT_LT(took, 900ms) << "a 500 ms command_timeout took "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                         << " ms under a signal every 20 ms";
}

}  // namespace
}  // namespace prodsafe::redis
