#include "prodsafe/redis/script.hpp"

#include <vector>

#include <fmt/format.h>

#include "prodsafe/core/sha1.hpp"

namespace prodsafe::redis {

Script::Script(std::string name, std::string source)
    : name_(std::move(name)), source_(std::move(source)), sha_(sha1_hex(source_)) {}

namespace {

// EVALSHA sha numkeys keys... args...; `key_count` must outlive the result.
std::vector<std::string_view> evalsha_argv(const std::string& sha, const std::string& key_count,
                                           std::span<const std::string_view> keys,
                                           std::span<const std::string_view> args) {
  std::vector<std::string_view> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(sha);
  argv.push_back(key_count);
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// Sends `argv` (EVALSHA ...) with `send`; on NOSCRIPT sends it again as EVAL
// with the source, which also caches the script on that server.
template <typename Send>
Reply run_with_reload(std::vector<std::string_view>& argv, const std::string& source, Send&& send) {
  Reply reply = send(std::span<const std::string_view>(argv));
  if (reply.is_error() && reply.error_message().starts_with("NOSCRIPT")) {
    argv[0] = "EVAL";
    argv[1] = source;
    reply = send(std::span<const std::string_view>(argv));
  }
  return reply;
}

}  // namespace

Reply Script::run(Client& client, std::initializer_list<std::string_view> keys,
                  std::initializer_list<std::string_view> args) const {
  const std::string key_count = std::to_string(keys.size());
  std::vector<std::string_view> argv =
      evalsha_argv(sha_, key_count, std::span<const std::string_view>(keys.begin(), keys.size()),
                   std::span<const std::string_view>(args.begin(), args.size()));
  Reply reply = run_with_reload(
      argv, source_, [&client](std::span<const std::string_view> a) { return client.execute(a); });
  if (reply.is_error()) {
    reply.check(fmt::format("Lua script '{}' on {}", name_, client.endpoint().redacted()));
  }
  return reply;
}

Reply Script::run(Connection& connection, std::span<const std::string_view> keys,
                  std::span<const std::string_view> args) const {
  const std::string key_count = std::to_string(keys.size());
  std::vector<std::string_view> argv = evalsha_argv(sha_, key_count, keys, args);
  Reply reply = run_with_reload(argv, source_, [&connection](std::span<const std::string_view> a) {
    return connection.command(a);
  });
  if (reply.is_error()) {
    reply.check(fmt::format("Lua script '{}' on {}", name_, connection.endpoint().redacted()));
  }
  return reply;
}

void Script::add_to(Pipeline& pipeline, std::span<const std::string_view> keys,
                    std::span<const std::string_view> args, bool with_source) const {
  const std::string key_count = std::to_string(keys.size());
  std::vector<std::string_view> argv = evalsha_argv(sha_, key_count, keys, args);
  if (with_source) {
    argv[0] = "EVAL";
    argv[1] = source_;
  }
  pipeline.add(std::span<const std::string_view>(argv));
}

}  // namespace prodsafe::redis
