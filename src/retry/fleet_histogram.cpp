#include "prodsafe/retry/fleet_histogram.hpp"

#include <charconv>
#include <vector>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::retry {

FleetHistogram::FleetHistogram(std::shared_ptr<redis::Client> client) : client_(std::move(client)) {
  if (!client_) throw InvalidArgument("FleetHistogram needs a redis::Client, got null");
}

std::string FleetHistogram::key(std::string_view job_type) const {
  return client_->key(fmt::format("retry:histogram:{}", job_type));
}

void FleetHistogram::record(std::string_view job_type, int attempts) {
  const std::string_view bucket =
      RetryHistogram::bucket_label(RetryHistogram::bucket_for(attempts));
  client_->command({"HINCRBY", key(job_type), bucket, "1"});
}

RetryHistogram FleetHistogram::snapshot(std::string_view job_type) {
  const std::string name = key(job_type);
  std::vector<std::string> args = {"HMGET", name};
  for (std::size_t i = 0; i < kHistogramBuckets; ++i) {
    args.emplace_back(RetryHistogram::bucket_label(i));
  }
  redis::Reply reply;
  try {
    reply = client_->command(args);
  } catch (const ReplyError& error) {
    if (error.prefix() != "WRONGTYPE") throw;
    throw DecodeError(
        fmt::format("retry histogram '{}' is not a hash: {}", name, error.server_message()));
  }
  RetryHistogram::Counts counts{};
  const auto& fields = reply.array();
  for (std::size_t i = 0; i < kHistogramBuckets && i < fields.size(); ++i) {
    const auto text = fields[i].optional_str();
    if (!text) continue;
    const auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), counts[i]);
    if (ec != std::errc() || ptr != text->data() + text->size()) {
      throw DecodeError(fmt::format("retry histogram '{}' bucket '{}' holds '{}', not a count",
                                    name, RetryHistogram::bucket_label(i), *text));
    }
  }
  return RetryHistogram(counts);
}

void FleetHistogram::reset(std::string_view job_type) { client_->del(key(job_type)); }

}  // namespace prodsafe::retry
