// A Redis reply (RESP2) as a value: nil, bulk string, status, integer, error or
// array. Typed accessors throw prodsafe::ProtocolError when the reply has
// another type, naming both.
//
// Thread safety: a Reply is an immutable value once built.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace prodsafe::redis {

class Reply {
 public:
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };

  Reply() = default;  // nil
  static Reply nil() { return Reply(); }
  static Reply string(std::string value) { return Reply(Type::kString, std::move(value)); }
  static Reply status(std::string value) { return Reply(Type::kStatus, std::move(value)); }
  static Reply error(std::string message) { return Reply(Type::kError, std::move(message)); }
  static Reply integer(long long value);
  static Reply array(std::vector<Reply> elements);

  [[nodiscard]] Type type() const noexcept { return type_; }
  [[nodiscard]] bool is_nil() const noexcept { return type_ == Type::kNil; }
  [[nodiscard]] bool is_error() const noexcept { return type_ == Type::kError; }

  // A bulk string or status ("OK", "PONG").
  [[nodiscard]] const std::string& str() const;
  // nullopt for nil, else str().
  [[nodiscard]] std::optional<std::string> optional_str() const;
  [[nodiscard]] long long integer() const;
  [[nodiscard]] const std::vector<Reply>& array() const;
  // The server's message of an error reply.
  [[nodiscard]] const std::string& error_message() const;

  // Throws prodsafe::ReplyError (with `context` in its message) when this is an
  // error reply; returns *this otherwise.
  const Reply& check(std::string_view context = {}) const;

  // For test failure messages and logs: "nil", "\"OK\"", "(integer) 3", ...
  [[nodiscard]] std::string debug_string() const;

  friend bool operator==(const Reply&, const Reply&) = default;

 private:
  Reply(Type type, std::string text) : type_(type), value_(std::move(text)) {}

  Type type_ = Type::kNil;
  std::variant<std::monostate, std::string, long long, std::vector<Reply>> value_;
};

[[nodiscard]] std::string_view to_string(Reply::Type type) noexcept;

}  // namespace prodsafe::redis
