#include "prodsafe/redis/script.hpp"

#include <vector>

#include <fmt/format.h>

#include "prodsafe/core/sha1.hpp"

namespace prodsafe::redis {

Script::Script(std::string name, std::string source)
    : name_(std::move(name)), source_(std::move(source)), sha_(sha1_hex(source_)) {}

Reply Script::run(Client& client, std::initializer_list<std::string_view> keys,
                  std::initializer_list<std::string_view> args) const {
  return run(*client.pool().checkout(),
             std::span<const std::string_view>(keys.begin(), keys.size()),
             std::span<const std::string_view>(args.begin(), args.size()));
}

Reply Script::run(Connection& connection, std::span<const std::string_view> keys,
                  std::span<const std::string_view> args) const {
  const std::string key_count = std::to_string(keys.size());
  std::vector<std::string_view> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(sha_);
  argv.push_back(key_count);
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());

  Reply reply = connection.command(std::span<const std::string_view>(argv));
  if (reply.is_error() && reply.error_message().starts_with("NOSCRIPT")) {
    argv[0] = "EVAL";
    argv[1] = source_;
    reply = connection.command(std::span<const std::string_view>(argv));
  }
  if (reply.is_error()) {
    reply.check(fmt::format("Lua script '{}' on {}", name_, connection.endpoint().redacted()));
  }
  return reply;
}

}  // namespace prodsafe::redis
