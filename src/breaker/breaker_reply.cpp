#include "breaker_reply.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace prodsafe::breaker::detail {

Snapshot decode_breaker_reply(std::string_view name, const redis::Reply& reply) {
  const auto& parts = reply.array();
  if (parts.size() != 11) {
    throw ProtocolError(
        fmt::format("circuit breaker script returned {} for '{}'", reply.debug_string(), name));
  }
  Snapshot snapshot;
  snapshot.state = parse_state(parts[0].str()).value_or(State::kClosed);
  snapshot.previous = parse_state(parts[1].str()).value_or(State::kClosed);
  snapshot.transitioned = parts[2].integer() == 1;
  snapshot.allowed = parts[3].integer() == 1;
  snapshot.failures = static_cast<std::uint64_t>(parts[4].integer());
  snapshot.successes = static_cast<std::uint64_t>(parts[5].integer());
  snapshot.trips = static_cast<std::uint64_t>(parts[6].integer());
  snapshot.retry_after = milliseconds(parts[7].integer());
  snapshot.permit = static_cast<PermitId>(parts[8].integer());
  snapshot.forced_by = parts[9].str();
  snapshot.forced_at = milliseconds(parts[10].integer());
  return snapshot;
}

void rethrow_breaker_error(std::string_view name, const ReplyError& error) {
  if (error.prefix() != "CORRUPT") throw error;
  // "CORRUPT <why>"; a bare "CORRUPT" (another script version) has no why.
  std::string_view why = error.server_message();
  why.remove_prefix(std::min(why.size(), std::string_view("CORRUPT ").size()));
  throw DecodeError(fmt::format("circuit breaker '{}' is not valid: {}", name, why));
}

std::optional<Transition> decode_breaker_event(const redis::Reply& message) {
  if (message.type() != redis::Reply::Type::kArray) return std::nullopt;
  const auto& parts = message.array();
  if (parts.size() != 3 || parts[0].str() != "message") return std::nullopt;
  // "<STATE>[:<retry_after ms>[:<trips>]]"
  const std::string_view payload = parts[2].str();
  const std::size_t colon = payload.find(':');
  const auto state = parse_state(payload.substr(0, colon));
  if (!state) return std::nullopt;
  Transition transition;
  transition.state = *state;
  if (colon == std::string_view::npos) return transition;
  const char* end = payload.data() + payload.size();
  long long left_ms = 0;
  const auto [after_left, left_error] = std::from_chars(payload.data() + colon + 1, end, left_ms);
  if (left_error == std::errc{}) transition.retry_after = milliseconds(std::max(0LL, left_ms));
  if (left_error == std::errc{} && after_left != end && *after_left == ':') {
    std::uint64_t trips = 0;
    const auto [after_trips, trips_error] = std::from_chars(after_left + 1, end, trips);
    if (trips_error == std::errc{} && after_trips == end) transition.trips = trips;
  }
  return transition;
}

}  // namespace prodsafe::breaker::detail
