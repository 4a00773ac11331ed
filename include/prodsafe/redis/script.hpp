// A Lua script run by EVALSHA. The SHA-1 is computed locally, so the first run
// costs one round trip like every other; when the server answers NOSCRIPT
// (its script cache is empty, e.g. after a restart or SCRIPT FLUSH), the
// script is sent once with EVAL, which also caches it again, transparently.
//
// Thread safety: a Script is immutable; share it freely.
#pragma once

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/connection.hpp"
#include "prodsafe/redis/pipeline.hpp"
#include "prodsafe/redis/reply.hpp"

namespace prodsafe::redis {

class Script {
 public:
  // `name` appears in error messages ("claim", "commit", ...).
  Script(std::string name, std::string source);

  // Runs the script with KEYS and ARGV. An error reply (a runtime error in the
  // script, or redis.error_reply) throws ReplyError naming the script.
  Reply run(Client& client, std::initializer_list<std::string_view> keys,
            std::initializer_list<std::string_view> args) const;
  Reply run(Connection& connection, std::span<const std::string_view> keys,
            std::span<const std::string_view> args) const;

  // Appends the script's call to `pipeline`: EVALSHA with the SHA-1, or
  // (`with_source`, after a NOSCRIPT reply) EVAL with the source. For callers
  // that must send something after it on the same connection, such as WAIT.
  void add_to(Pipeline& pipeline, std::span<const std::string_view> keys,
              std::span<const std::string_view> args, bool with_source = false) const;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const std::string& source() const noexcept { return source_; }
  [[nodiscard]] const std::string& sha() const noexcept { return sha_; }

 private:
  std::string name_;
  std::string source_;
  std::string sha_;
};

}  // namespace prodsafe::redis
