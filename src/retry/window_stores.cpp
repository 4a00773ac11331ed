#include "prodsafe/retry/window_stores.hpp"

#include <charconv>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/script.hpp"
#include "prodsafe/retry_lua.hpp"

namespace prodsafe::retry {
namespace {

using std::chrono::milliseconds;
using SystemTime = std::chrono::system_clock::time_point;

const redis::Script& window_script() {
  static const redis::Script script("retry window", std::string(kWindowLua));
  return script;
}

SystemTime from_ms(long long ms) { return SystemTime(milliseconds(ms)); }

void finish(RetryWindow& window) {
  window.duration =
      std::chrono::duration_cast<milliseconds>(window.last_attempt - window.first_attempt);
}

}  // namespace

RedisRetryWindowStore::RedisRetryWindowStore(std::shared_ptr<redis::Client> client)
    : client_(std::move(client)) {
  if (!client_) throw InvalidArgument("RedisRetryWindowStore needs a redis::Client, got null");
}

std::optional<RetryWindow> RedisRetryWindowStore::call(std::string_view job_id, std::string_view op,
                                                       std::string_view job_type,
                                                       milliseconds ttl) {
  const std::string key = client_->key(fmt::format("retry:window:{}", job_id));
  const std::string ttl_ms = std::to_string(ttl.count());
  redis::Reply reply;
  try {
    reply = window_script().run(*client_, {key}, {op, job_type, ttl_ms});
  } catch (const ReplyError& error) {
    if (error.prefix() != "CORRUPT") throw;
    throw DecodeError(
        fmt::format("retry window '{}' is not valid: {}", key, error.server_message().substr(8)));
  }
  if (reply.is_nil()) return std::nullopt;
  const auto& parts = reply.array();
  if (parts.size() != 4) {
    throw ProtocolError(
        fmt::format("retry window script returned {} for '{}'", reply.debug_string(), key));
  }
  RetryWindow window;
  window.job_id = std::string(job_id);
  window.job_type = parts[0].str();
  window.first_attempt = from_ms(parts[1].integer());
  window.last_attempt = from_ms(parts[2].integer());
  window.attempts = static_cast<int>(parts[3].integer());
  finish(window);
  return window;
}

RetryWindow RedisRetryWindowStore::start(std::string_view job_id, std::string_view job_type,
                                         milliseconds ttl) {
  return *call(job_id, "start", job_type, ttl);
}

std::optional<RetryWindow> RedisRetryWindowStore::increment(std::string_view job_id) {
  return call(job_id, "increment", "", milliseconds(0));
}

std::optional<RetryWindow> RedisRetryWindowStore::close(std::string_view job_id, bool success) {
  auto window = call(job_id, "close", "", milliseconds(0));
  if (window) window->success = success;
  return window;
}

InMemoryRetryWindowStore::InMemoryRetryWindowStore(Clock* clock)
    : clock_(clock != nullptr ? *clock : SystemClock::instance()) {}

RetryWindow InMemoryRetryWindowStore::start(std::string_view job_id, std::string_view job_type,
                                            milliseconds ttl) {
  RetryWindow window;
  window.job_id = std::string(job_id);
  window.job_type = std::string(job_type);
  window.first_attempt = window.last_attempt = clock_.system_now();
  window.attempts = 1;
  std::lock_guard lock(mutex_);
  const auto now = clock_.steady_now();
  if (++operations_ % 1024 == 0) {
    std::erase_if(windows_, [now](const auto& entry) { return entry.second.expires_at <= now; });
  }
  windows_[window.job_id] = Entry{window, now + ttl};
  return window;
}

std::optional<RetryWindow> InMemoryRetryWindowStore::increment(std::string_view job_id) {
  std::lock_guard lock(mutex_);
  const auto found = windows_.find(std::string(job_id));
  const auto now = clock_.steady_now();
  if (found == windows_.end()) return std::nullopt;
  if (found->second.expires_at <= now) {
    windows_.erase(found);
    return std::nullopt;
  }
  RetryWindow& window = found->second.window;
  window.attempts += 1;
  window.last_attempt = clock_.system_now();
  finish(window);
  return window;
}

std::optional<RetryWindow> InMemoryRetryWindowStore::close(std::string_view job_id, bool success) {
  std::lock_guard lock(mutex_);
  const auto found = windows_.find(std::string(job_id));
  if (found == windows_.end()) return std::nullopt;
  const bool expired = found->second.expires_at <= clock_.steady_now();
  RetryWindow window = std::move(found->second.window);
  windows_.erase(found);
  if (expired) return std::nullopt;
  window.last_attempt = clock_.system_now();
  finish(window);
  window.success = success;
  return window;
}

std::size_t InMemoryRetryWindowStore::size() const {
  std::lock_guard lock(mutex_);
  return windows_.size();
}

}  // namespace prodsafe::retry
