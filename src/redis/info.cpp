#include "prodsafe/redis/info.hpp"

#include <charconv>

namespace prodsafe::redis {

std::optional<std::string> Info::get(std::string_view field) const {
  const auto found = fields_.find(field);
  if (found == fields_.end()) return std::nullopt;
  return found->second;
}

std::optional<long long> Info::number(std::string_view field) const {
  const auto found = fields_.find(field);
  if (found == fields_.end()) return std::nullopt;
  const std::string& text = found->second;
  long long value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

Info parse_info(std::string_view text) {
  std::map<std::string, std::string, std::less<>> fields;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    fields.insert_or_assign(std::string(line.substr(0, colon)),
                            std::string(line.substr(colon + 1)));
  }
  return Info(std::move(fields));
}

}  // namespace prodsafe::redis
