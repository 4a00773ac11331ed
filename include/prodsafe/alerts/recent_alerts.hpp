// The fleet's recent alerts, as RedisAlertStream (redis_alert_stream.hpp)
// keeps them in a capped Redis stream: read them back for a dashboard or the
// CLI.
//
//   for (const StoredAlert& alert : read_recent_alerts(client, 50)) {
//     if (alert.damaged()) { show_damaged(alert.id, alert.damage); continue; }
//     show(alert.event_type, alert.message, alert.context.instance);
//   }
//
// The stream's format. Key: Client::key(name), so redis::Options::key_prefix
// applies; name defaults to kAlertStreamName ("alerts:recent"). One entry per
// alert, its ID given by the server (XADD ... *), so entries are in the order
// they reached Redis. Fields, each value the bytes as given (no escaping, no
// UTF-8 check):
//   type            the event type, e.g. "circuit_opened"        always
//   message         the alert's message                          always
//   at_ms           when it fired: the firing process's wall     always
//                   clock, ms since the Unix epoch (signed)
//   instance        who fired it, "host:pid"                     always
//   job_type, state, previous_state                              when not empty
//   failure_count, threshold (unsigned decimal), window_ms       when not zero
//   extra.<name>    one per AlertContext::extra entry
// A reader keeps fields it does not know (a newer writer's) in
// context.extra under their own names.
//
// at_ms comes from each process's clock, which may be wrong or jump; the
// entry ID is the Redis server's time, and the order of the list.
//
// Thread safety: read_recent_alerts() is safe to call from any thread (the
// Client is).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "prodsafe/alerts/alert_hooks.hpp"

namespace prodsafe::redis {
class Client;
}  // namespace prodsafe::redis

namespace prodsafe::alerts {

// The stream's default name, under the client's key prefix.
inline constexpr std::string_view kAlertStreamName = "alerts:recent";

// One entry of the stream.
struct StoredAlert {
  // The entry's stream ID, "<server ms>-<sequence>", e.g. "1767225600000-0".
  std::string id{};
  std::string event_type{};
  std::string message{};
  // job_type, state, previous_state, failure_count, threshold, window,
  // instance and extra as fired; timestamp from at_ms.
  AlertContext context{};
  // Empty for an entry that decoded; otherwise why it did not (a required
  // field missing, a number that does not parse or is out of range, a field
  // given twice). A damaged entry has only id, damage and fields set.
  std::string damage{};
  // A damaged entry's fields as stored (name, value), in order; empty for an
  // entry that decoded.
  std::vector<std::pair<std::string, std::string>> fields{};

  [[nodiscard]] bool damaged() const noexcept { return !damage.empty(); }
};

// The newest `count` entries of the stream Client::key(name), newest first
// (XREVRANGE key + - COUNT count): one round trip. A missing key gives an
// empty list, and so does a count of 0 (without a round trip). An entry that
// does not decode is returned in its place with damage set, never skipped,
// so a dashboard can show that something wrote garbage there.
//
// Throws DecodeError, naming the key, when it holds something other than a
// stream (delete it, or give the stream another name); ProtocolError when
// the reply is not shaped like XREVRANGE's; ReplyError for any other error
// reply; StoreUnavailable or Timeout when Redis cannot be reached.
[[nodiscard]] std::vector<StoredAlert> read_recent_alerts(redis::Client& client, std::size_t count,
                                                          std::string_view name = kAlertStreamName);

}  // namespace prodsafe::alerts
