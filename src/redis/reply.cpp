#include "prodsafe/redis/reply.hpp"

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"

namespace prodsafe::redis {
namespace {

[[noreturn]] void wrong_type(std::string_view expected, const Reply& reply) {
  throw ProtocolError(
      fmt::format("expected {} reply from Redis, got {}", expected, reply.debug_string()));
}

}  // namespace

std::string_view to_string(Reply::Type type) noexcept {
  switch (type) {
    case Reply::Type::kNil:
      return "nil";
    case Reply::Type::kString:
      return "string";
    case Reply::Type::kStatus:
      return "status";
    case Reply::Type::kInteger:
      return "integer";
    case Reply::Type::kArray:
      return "array";
    case Reply::Type::kError:
      return "error";
  }
  return "unknown";
}

Reply Reply::integer(long long value) {
  Reply reply;
  reply.type_ = Type::kInteger;
  reply.value_ = value;
  return reply;
}

Reply Reply::array(std::vector<Reply> elements) {
  Reply reply;
  reply.type_ = Type::kArray;
  reply.value_ = std::move(elements);
  return reply;
}

const std::string& Reply::str() const {
  if (type_ != Type::kString && type_ != Type::kStatus) wrong_type("a string", *this);
  return std::get<std::string>(value_);
}

std::optional<std::string> Reply::optional_str() const {
  if (type_ == Type::kNil) return std::nullopt;
  return str();
}

long long Reply::integer() const {
  if (type_ != Type::kInteger) wrong_type("an integer", *this);
  return std::get<long long>(value_);
}

const std::vector<Reply>& Reply::array() const {
  if (type_ != Type::kArray) wrong_type("an array", *this);
  return std::get<std::vector<Reply>>(value_);
}

const std::string& Reply::error_message() const {
  if (type_ != Type::kError) wrong_type("an error", *this);
  return std::get<std::string>(value_);
}

const Reply& Reply::check(std::string_view context) const {
  if (type_ == Type::kError) throw ReplyError(std::get<std::string>(value_), std::string(context));
  return *this;
}

std::string Reply::debug_string() const {
  constexpr std::size_t kMaxShown = 64;
  switch (type_) {
    case Type::kNil:
      return "nil";
    case Type::kString:
    case Type::kStatus:
    case Type::kError: {
      const std::string& text = std::get<std::string>(value_);
      std::string shown = text.size() > kMaxShown ? text.substr(0, kMaxShown) + "..." : text;
      return fmt::format("({}) \"{}\"", to_string(type_), shown);
    }
    case Type::kInteger:
      return fmt::format("(integer) {}", std::get<long long>(value_));
    case Type::kArray:
      return fmt::format("(array of {})", std::get<std::vector<Reply>>(value_).size());
  }
  return "unknown";
}

}  // namespace prodsafe::redis
