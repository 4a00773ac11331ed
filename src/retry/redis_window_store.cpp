#include "prodsafe/retry/redis_window_store.hpp"

#include <charconv>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/script.hpp"
#include "prodsafe/retry_lua.hpp"
#include "window_duration.hpp"

namespace prodsafe::retry {
namespace {

using std::chrono::milliseconds;
using SystemTime = std::chrono::system_clock::time_point;

const redis::Script& window_script() {
  static const redis::Script script("retry window", std::string(kWindowLua));
  return script;
}

SystemTime from_ms(long long ms) { return SystemTime(milliseconds(ms)); }

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
  set_duration(window);
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

}  // namespace prodsafe::retry
