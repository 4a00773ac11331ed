// A batch of commands sent with one write and answered with one reply each,
// in order. Build it, then run it with Client::pipeline() (or
// Connection::pipeline()); an error reply for one command does not stop the
// others: it comes back as a Reply of type kError in its place.
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

 private:
  std::string buffer_;
  std::size_t count_ = 0;
};

}  // namespace prodsafe::redis
