// The text of Redis's INFO command as a lookup table.
//
// Thread safety: a plain value; parse_info() is a pure function.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace prodsafe::redis {

class Info {
 public:
  Info() = default;
  explicit Info(std::map<std::string, std::string, std::less<>> fields)
      : fields_(std::move(fields)) {}

  // The field's value ("7.0.15" for "redis_version"), or nullopt when absent.
  [[nodiscard]] std::optional<std::string> get(std::string_view field) const;
  // The field as a number, or nullopt when absent or not a number.
  [[nodiscard]] std::optional<long long> number(std::string_view field) const;
  [[nodiscard]] bool has(std::string_view field) const { return fields_.contains(field); }
  [[nodiscard]] std::size_t size() const noexcept { return fields_.size(); }

 private:
  std::map<std::string, std::string, std::less<>> fields_;
};

// Parses "# Section\r\nfield:value\r\n..." (all sections into one table;
// field names are unique across sections). Lines without ':' are skipped.
[[nodiscard]] Info parse_info(std::string_view text);

}  // namespace prodsafe::redis
