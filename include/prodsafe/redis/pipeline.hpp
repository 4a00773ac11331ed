// A batch of commands sent with one write and answered with one reply each,
// in order. Build it, then run it with Client::pipeline() (or
// Connection::pipeline()); an error reply for one command does not stop the
// others: it comes back as a Reply of type kError in its place.
//
// A pipeline may hold a transaction (MULTI ... EXEC, with WATCH before it).
// add() classifies each command (connection_state.hpp), so a Pipeline knows
// whether running it leaves its connection changed for later commands: a
// MULTI or WATCH still open at its end, or a command such as SELECT or
// SUBSCRIBE anywhere in it. Client::pipeline() refuses such a pipeline before
// sending anything; Connection::pipeline() on a connection of one's own runs
// it.
//
// Thread safety: a Pipeline is a plain value; do not modify one that another
// thread is running.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "prodsafe/redis/connection_state.hpp"

namespace prodsafe::redis {

// Appends `args` to `out` as one RESP command (an array of bulk strings).
void encode_command(std::span<const std::string_view> args, std::string& out);

class Pipeline {
 public:
  Pipeline& add(std::initializer_list<std::string_view> args);
  Pipeline& add(std::span<const std::string_view> args);
  Pipeline& add(const std::vector<std::string>& args);

  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  void clear() noexcept;
  // The commands as RESP, ready to write.
  [[nodiscard]] const std::string& encoded() const noexcept { return buffer_; }

  // True when running the pipeline would leave its connection changed: a
  // MULTI that no later EXEC or DISCARD closes, a WATCH that no later EXEC,
  // DISCARD or UNWATCH forgets, or a StateChange::kLasting command anywhere
  // (even inside MULTI ... EXEC, which runs it). A flag read; add() keeps it.
  [[nodiscard]] bool changes_connection_state() const noexcept { return changes_state_; }
  // Which command makes changes_connection_state() true, why, and what to do
  // instead; empty when it is false.
  [[nodiscard]] std::string connection_state_change() const;
  // The positions (0-based) of the EXEC, DISCARD and UNWATCH commands that
  // changes_connection_state() counts on to end a MULTI or WATCH. The server
  // may refuse one (a wrong argument count, an ACL): its reply is then an
  // error other than EXECABORT, and the connection is still in the
  // transaction or watching. Client::pipeline() then drops the connection.
  [[nodiscard]] std::span<const std::size_t> state_endings() const noexcept { return endings_; }

 private:
  void track(const CommandState& state) noexcept;

  std::string buffer_;
  std::size_t count_ = 0;
  // Connection state after the commands so far (see connection_state.hpp).
  bool changes_state_ = false;  // lasting_ set, or multi_ or watch_ open
  bool multi_open_ = false;
  bool watch_open_ = false;
  std::size_t multi_index_ = 0;    // 1-based: the MULTI still open
  std::size_t watch_index_ = 0;    // 1-based: the first WATCH still in effect
  std::size_t lasting_index_ = 0;  // 1-based: the first kLasting command; 0 none
  CommandState lasting_;
  std::vector<std::size_t> endings_;  // see state_endings()
};

}  // namespace prodsafe::redis
