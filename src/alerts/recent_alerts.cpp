#include "prodsafe/alerts/recent_alerts.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "alert_stream_fields.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/reply.hpp"

namespace prodsafe::alerts {
namespace {

using redis::Reply;
using std::chrono::milliseconds;
using Pairs = std::vector<std::pair<std::string, std::string>>;

// `value` for a message: at most 40 bytes, bytes other than printable ASCII
// as \xNN, so garbage cannot mangle a log line or a dashboard.
std::string quoted(std::string_view value) {
  constexpr std::size_t kShown = 40;
  std::string out = "'";
  for (const char c : value.substr(0, kShown)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f && c != '\'' && c != '\\') {
      out += c;
    } else {
      out += fmt::format("\\x{:02x}", byte);
    }
  }
  out += value.size() > kShown ? "'..." : "'";
  return out;
}

// A whole decimal number (no sign for unsigned, no spaces), or nullopt.
template <class Integer>
std::optional<Integer> parse_integer(std::string_view text) {
  Integer value{};
  const char* end = text.data() + text.size();
  const auto [ptr, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || ptr != end) return std::nullopt;
  return value;
}

// Decodes one entry's fields into `alert`; returns why it is damaged, or an
// empty string.
std::string decode_fields(const Pairs& fields, StoredAlert& alert) {
  AlertContext& context = alert.context;
  std::set<std::string_view> seen;
  bool has_type = false;
  bool has_message = false;
  bool has_at = false;
  const auto unsigned_field = [](std::string_view name, std::string_view value,
                                 std::uint64_t& out) -> std::string {
    const auto parsed = parse_integer<std::uint64_t>(value);
    if (!parsed) return fmt::format("{} {} is not an unsigned integer", name, quoted(value));
    out = *parsed;
    return {};
  };
  for (const auto& [name, value] : fields) {
    if (!seen.insert(name).second) return fmt::format("field {} appears twice", quoted(name));
    std::string damage;
    if (name == detail::kFieldType) {
      alert.event_type = value;
      has_type = true;
    } else if (name == detail::kFieldMessage) {
      alert.message = value;
      has_message = true;
    } else if (name == detail::kFieldAtMs) {
      // Any time_point of the system clock in ms, no further (its nanosecond
      // count would overflow).
      constexpr std::int64_t kMaxMs =
          std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::duration::max())
              .count();
      const auto at = parse_integer<std::int64_t>(value);
      if (!at || *at > kMaxMs || *at < -kMaxMs) {
        return fmt::format("at_ms {} is not a time in ms since the Unix epoch", quoted(value));
      }
      context.timestamp = std::chrono::system_clock::time_point(milliseconds(*at));
      has_at = true;
    } else if (name == detail::kFieldInstance) {
      context.instance = value;
    } else if (name == detail::kFieldJobType) {
      context.job_type = value;
    } else if (name == detail::kFieldState) {
      context.state = value;
    } else if (name == detail::kFieldPreviousState) {
      context.previous_state = value;
    } else if (name == detail::kFieldFailureCount) {
      damage = unsigned_field(name, value, context.failure_count);
    } else if (name == detail::kFieldThreshold) {
      damage = unsigned_field(name, value, context.threshold);
    } else if (name == detail::kFieldWindowMs) {
      const auto window = parse_integer<std::int64_t>(value);
      if (!window) return fmt::format("window_ms {} is not an integer", quoted(value));
      context.window = milliseconds(*window);
    } else {
      // extra.<name>, or a field this reader does not know (kept as is).
      const std::string key =
          name.starts_with(detail::kExtraPrefix) ? name.substr(detail::kExtraPrefix.size()) : name;
      if (!context.extra.emplace(key, value).second) {
        return fmt::format("extra field {} appears twice", quoted(key));
      }
    }
    if (!damage.empty()) return damage;
  }
  if (!has_type) return "no 'type' field";
  if (!has_message) return "no 'message' field";
  if (!has_at) return "no 'at_ms' field";
  return {};
}

StoredAlert decode_entry(const Reply& entry, const std::string& key) {
  const auto malformed = [&](std::string_view what) {
    return ProtocolError(fmt::format("XREVRANGE {}: {} (the entry: {}); is this a Redis server?",
                                     key, what, entry.debug_string()));
  };
  if (entry.type() != Reply::Type::kArray || entry.array().size() != 2 ||
      entry.array()[0].type() != Reply::Type::kString) {
    throw malformed("an entry is not [id, fields]");
  }
  StoredAlert alert;
  alert.id = entry.array()[0].str();
  const Reply& fields = entry.array()[1];
  if (fields.type() != Reply::Type::kArray || fields.array().size() % 2 != 0) {
    throw malformed("an entry's fields are not name, value pairs");
  }
  Pairs pairs;
  pairs.reserve(fields.array().size() / 2);
  for (std::size_t i = 0; i < fields.array().size(); i += 2) {
    const Reply& name = fields.array()[i];
    const Reply& value = fields.array()[i + 1];
    if (name.type() != Reply::Type::kString || value.type() != Reply::Type::kString) {
      throw malformed("an entry's field is not a string");
    }
    pairs.emplace_back(name.str(), value.str());
  }
  std::string damage = decode_fields(pairs, alert);
  if (damage.empty()) return alert;
  return StoredAlert{
      .id = std::move(alert.id), .damage = std::move(damage), .fields = std::move(pairs)};
}

}  // namespace

std::vector<StoredAlert> read_recent_alerts(redis::Client& client, std::size_t count,
                                            std::string_view name) {
  if (name.empty()) {
    throw InvalidArgument("read_recent_alerts: the stream name is empty; the default is \"" +
                          std::string(kAlertStreamName) + "\"");
  }
  if (count == 0) return {};
  const std::string key = client.key(name);
  const std::string count_text = std::to_string(count);
  const std::array<std::string_view, 6> args{"XREVRANGE", key, "+", "-", "COUNT", count_text};
  const Reply reply = client.execute(args);
  if (reply.is_error()) {
    if (reply.error_message().starts_with("WRONGTYPE")) {
      throw DecodeError(fmt::format(
          "the alert stream '{}' holds another type of value, not a stream ({}); it was not "
          "written by prodsafe: delete the key, or give the stream another name",
          key, reply.error_message()));
    }
    reply.check("XREVRANGE " + key);
  }
  if (reply.type() != Reply::Type::kArray) {
    throw ProtocolError(fmt::format("XREVRANGE {} answered {}, not an array of entries", key,
                                    reply.debug_string()));
  }
  std::vector<StoredAlert> alerts;
  alerts.reserve(reply.array().size());
  for (const Reply& entry : reply.array()) alerts.push_back(decode_entry(entry, key));
  return alerts;
}

}  // namespace prodsafe::alerts
