// RetryWindowStore on Redis: windows every process on the same Redis shares.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "prodsafe/redis/client.hpp"
#include "prodsafe/retry/retry_window.hpp"

namespace prodsafe::retry {

// Windows in Redis under "retry:window:<job_id>" (behind the client's key
// prefix), one Lua round trip per operation, times from the server's TIME.
// A key holding something else gives DecodeError naming it.
// Thread safety: safe for concurrent use.
class RedisRetryWindowStore final : public RetryWindowStore {
 public:
  explicit RedisRetryWindowStore(std::shared_ptr<redis::Client> client);
  RetryWindow start(std::string_view job_id, std::string_view job_type,
                    std::chrono::milliseconds ttl) override;
  std::optional<RetryWindow> increment(std::string_view job_id) override;
  std::optional<RetryWindow> close(std::string_view job_id, bool success) override;

 private:
  std::optional<RetryWindow> call(std::string_view job_id, std::string_view op,
                                  std::string_view job_type, std::chrono::milliseconds ttl);
  std::shared_ptr<redis::Client> client_;
};

}  // namespace prodsafe::retry
