// A RetryHistogram per job type kept in Redis ("retry:histogram:<job_type>",
// one hash field per bucket), so every process adds to and reads the same one.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <memory>
#include <string_view>

#include "prodsafe/redis/client.hpp"
#include "prodsafe/retry/histogram.hpp"

namespace prodsafe::retry {

class FleetHistogram {
 public:
  explicit FleetHistogram(std::shared_ptr<redis::Client> client);

  // HINCRBY of the bucket `attempts` falls in: one round trip.
  void record(std::string_view job_type, int attempts);
  // The fleet's histogram for `job_type` (empty when none was recorded).
  // Throws DecodeError naming the key when it holds something else.
  [[nodiscard]] RetryHistogram snapshot(std::string_view job_type);
  // Deletes the job type's histogram.
  void reset(std::string_view job_type);

 private:
  [[nodiscard]] std::string key(std::string_view job_type) const;
  std::shared_ptr<redis::Client> client_;
};

}  // namespace prodsafe::retry
