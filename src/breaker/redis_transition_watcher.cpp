#include "redis_transition_watcher.hpp"

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <thread>

#include "breaker_reply.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/connection.hpp"

namespace prodsafe::breaker::detail {
namespace {

using std::chrono::milliseconds;

// What the watcher's thread and its Subscription share; the thread keeps it
// alive after a stop() from the callback itself lets the thread go.
struct Shared {
  std::atomic<bool> stopping{false};
  std::atomic<bool> listening{false};
  TransitionCallback callback;
};

// How often the thread looks at `stopping` while no message comes: stop()
// waits about this long.
constexpr milliseconds kPoll{100};
// The pause before reconnecting after the server could not be reached.
constexpr milliseconds kReconnectPause{500};

void deliver(Shared& shared, const Transition& transition, const std::string& channel) {
  try {
    shared.callback(transition);
  } catch (const std::exception& error) {
    logger()->error("breaker watch on {}: the callback threw ({}); dropped", channel, error.what());
  } catch (...) {
    logger()->error("breaker watch on {}: the callback threw; dropped", channel);
  }
}

void run(const std::shared_ptr<Shared>& shared, const redis::Endpoint& endpoint,
         const redis::Options& options, const std::string& channel) {
  // Opens the subscriber's connections: to the one server, the master the
  // sentinels name, or a node of a cluster (where PUBLISH reaches every node).
  std::optional<redis::Client> client;
  while (!shared->stopping.load()) {
    try {
      if (!client) client.emplace(endpoint, options);
      const std::unique_ptr<redis::Connection> connection = client->dedicated_connection();
      const std::string_view channels[] = {channel};
      connection->subscribe(channels);
      shared->listening.store(true);
      while (!shared->stopping.load()) {
        const auto message = connection->next_message(kPoll);
        if (!message) continue;
        const auto transition = decode_breaker_event(*message);
        if (transition && !shared->stopping.load()) deliver(*shared, *transition, channel);
      }
    } catch (const Error&) {
      // Unreachable, or the connection broke: what is published until the
      // next subscribe is lost; the watcher's owner reads the store to catch up.
      shared->listening.store(false);
      for (milliseconds slept{0}; slept < kReconnectPause && !shared->stopping.load();
           slept += kPoll) {
        std::this_thread::sleep_for(kPoll);
      }
    }
  }
  shared->listening.store(false);
}

class RedisWatch final : public Subscription::Handle {
 public:
  RedisWatch(const redis::Endpoint& endpoint, redis::Options options, std::string channel,
             TransitionCallback callback)
      : shared_(std::make_shared<Shared>()) {
    shared_->callback = std::move(callback);
    // Bounds each subscribe and read, so that stop() is never held up long.
    options.command_timeout = std::chrono::seconds(1);
    thread_ = std::thread([shared = shared_, endpoint, options, channel = std::move(channel)] {
      run(shared, endpoint, options, channel);
    });
  }
  ~RedisWatch() override { stop(); }
  RedisWatch(const RedisWatch&) = delete;
  RedisWatch& operator=(const RedisWatch&) = delete;

  void stop() noexcept override {
    shared_->stopping.store(true);
    shared_->listening.store(false);
    if (!thread_.joinable()) return;
    // From the callback, on the watcher's own thread: it cannot wait for
    // itself; it ends after the callback returns.
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
  }
  [[nodiscard]] bool listening() const noexcept override { return shared_->listening.load(); }

 private:
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

}  // namespace

Subscription watch_transitions(const redis::Endpoint& endpoint, redis::Options options,
                               std::string channel, TransitionCallback callback) {
  return Subscription(std::make_unique<RedisWatch>(endpoint, std::move(options), std::move(channel),
                                                   std::move(callback)));
}

}  // namespace prodsafe::breaker::detail
