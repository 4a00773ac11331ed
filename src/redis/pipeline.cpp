#include "prodsafe/redis/pipeline.hpp"

#include <charconv>

#include "prodsafe/core/error.hpp"

namespace prodsafe::redis {
namespace {

void append_header(char kind, std::size_t number, std::string& out) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, number);
  (void)ec;  // 24 characters hold any size_t.
  out.push_back(kind);
  out.append(digits, end);
  out.append("\r\n");
}

}  // namespace

void encode_command(std::span<const std::string_view> args, std::string& out) {
  if (args.empty()) throw InvalidArgument("a Redis command needs at least its name");
  append_header('*', args.size(), out);
  for (std::string_view arg : args) {
    append_header('$', arg.size(), out);
    out.append(arg);
    out.append("\r\n");
  }
}

Pipeline& Pipeline::add(std::initializer_list<std::string_view> args) {
  return add(std::span<const std::string_view>(args.begin(), args.size()));
}

Pipeline& Pipeline::add(std::span<const std::string_view> args) {
  encode_command(args, buffer_);
  ++count_;
  return *this;
}

Pipeline& Pipeline::add(const std::vector<std::string>& args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  return add(std::span<const std::string_view>(views));
}

void Pipeline::clear() noexcept {
  buffer_.clear();
  count_ = 0;
}

}  // namespace prodsafe::redis
