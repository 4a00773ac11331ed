#include "prodsafe/redis/pipeline.hpp"

#include <charconv>

#include <fmt/format.h>

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
  track(classify_command(args));
  return *this;
}

// Follows the server: MULTI inside MULTI and WATCH inside MULTI are refused
// (they change nothing), UNWATCH inside MULTI is queued (EXEC forgets the
// watches anyway), EXEC and DISCARD without MULTI are refused (they forget
// nothing).
void Pipeline::track(const CommandState& state) noexcept {
  switch (state.change) {
    case StateChange::kNone:
      return;
    case StateChange::kMulti:
      if (!multi_open_) multi_index_ = count_;
      multi_open_ = true;
      break;
    case StateChange::kEndMulti:
      if (multi_open_) {
        endings_.push_back(count_ - 1);
        multi_open_ = watch_open_ = false;
      }
      break;
    case StateChange::kWatch:
      if (!multi_open_ && !watch_open_) {
        watch_open_ = true;
        watch_index_ = count_;
      }
      break;
    case StateChange::kUnwatch:
      if (!multi_open_ && watch_open_) endings_.push_back(count_ - 1);
      if (!multi_open_) watch_open_ = false;
      break;
    case StateChange::kLasting:
      if (lasting_index_ == 0) {
        lasting_index_ = count_;
        lasting_ = state;
      }
      break;
  }
  changes_state_ = lasting_index_ != 0 || multi_open_ || watch_open_;
}

std::string Pipeline::connection_state_change() const {
  if (lasting_index_ != 0) {
    return fmt::format("command {} of {} ({}) changes the connection for every later command; {}",
                       lasting_index_, count_, lasting_.name, lasting_.advice);
  }
  const auto explain = [this](std::string_view name, std::size_t index, std::string_view what) {
    const CommandState state = classify_command(std::span<const std::string_view>(&name, 1));
    return fmt::format("command {} of {} ({}) {}; end it in the same pipeline, or {}", index,
                       count_, name, what, state.advice);
  };
  if (multi_open_) {
    return explain("MULTI", multi_index_,
                   "starts a transaction that no later EXEC or DISCARD in the pipeline ends");
  }
  if (watch_open_) {
    return explain("WATCH", watch_index_,
                   "watches keys that no later EXEC, DISCARD or UNWATCH in the pipeline forgets");
  }
  return {};
}

Pipeline& Pipeline::add(const std::vector<std::string>& args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  return add(std::span<const std::string_view>(views));
}

void Pipeline::clear() noexcept {
  buffer_.clear();
  count_ = 0;
  changes_state_ = multi_open_ = watch_open_ = false;
  multi_index_ = watch_index_ = lasting_index_ = 0;
  lasting_ = {};
  endings_.clear();
}

}  // namespace prodsafe::redis
