#include "node_probe.hpp"

#include <thread>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/connection.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/options.hpp"

namespace prodsafe::embedded::detail {

using std::chrono::milliseconds;

std::optional<redis::Reply> query(int port, const std::string& password,
                                  const std::vector<std::string>& args, std::string& error) {
  redis::Endpoint endpoint;
  endpoint.port = port;
  endpoint.password = password;
  // Short enough that a paused or dead node costs a poll little time.
  const redis::Options probe{.connect_timeout = milliseconds(300),
                             .command_timeout = milliseconds(1000)};
  try {
    redis::Connection connection(endpoint, probe);
    redis::Reply reply = connection.command(args);
    if (!reply.is_error()) return reply;
    error = fmt::format("port {}: {} answered {}", port, args.front(), reply.error_message());
  } catch (const Error& failure) {
    error = fmt::format("port {}: {}", port, failure.what());
  }
  return std::nullopt;
}

std::optional<redis::Info> query_info(int port, const std::string& password,
                                      const std::string& section, std::string& error) {
  const std::optional<redis::Reply> reply = query(port, password, {"INFO", section}, error);
  if (!reply) return std::nullopt;
  if (reply->type() != redis::Reply::Type::kString) {
    error = fmt::format("port {}: INFO answered {}", port, reply->debug_string());
    return std::nullopt;
  }
  return redis::parse_info(reply->str());
}

std::map<std::string, std::string> fields(const redis::Reply& reply) {
  std::map<std::string, std::string> out;
  const std::vector<redis::Reply>& items = reply.array();
  for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
    if (items[i].type() != redis::Reply::Type::kString &&
        items[i].type() != redis::Reply::Type::kStatus) {
      continue;
    }
    const redis::Reply& value = items[i + 1];
    if (value.type() == redis::Reply::Type::kString ||
        value.type() == redis::Reply::Type::kStatus) {
      out[items[i].str()] = value.str();
    } else if (value.type() == redis::Reply::Type::kInteger) {
      out[items[i].str()] = std::to_string(value.integer());
    }
  }
  return out;
}

void wait_until(milliseconds timeout, std::string_view what,
                const std::function<bool(std::string& seen)>& done) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string seen = "nothing yet";
  for (;;) {
    if (done(seen)) return;
    if (std::chrono::steady_clock::now() > deadline) {
      throw Timeout(fmt::format("{} within {} ms; last seen: {}", what, timeout.count(), seen));
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
}

}  // namespace prodsafe::embedded::detail
