#include "effect_records.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include <fmt/format.h>

#include "ops_common.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/script.hpp"
#include "redis_effect_reply.hpp"

namespace prodsafe::cli {
namespace {

using idempotency::EffectRecord;
using std::chrono::milliseconds;

}  // namespace

bool split_effect_key(std::string_view key, std::string_view prefix, std::string& type,
                      std::string& id) {
  if (!key.starts_with(prefix)) return false;
  key.remove_prefix(prefix.size());
  const std::size_t colon = key.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == key.size()) return false;
  type = std::string(key.substr(0, colon));
  id = std::string(key.substr(colon + 1));
  return true;
}

namespace {

// Deletes the record only if it still has the state and token it was read
// with (a claim, commit or recovery in between leaves it alone). 1 deleted,
// 0 gone, -1 changed.
const redis::Script& clear_script() {
  static const redis::Script script("effects clear", R"lua(
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return 0 end
if kind ~= 'hash' then return -1 end
local record = redis.call('HMGET', KEYS[1], 'state', 'token')
if record[1] ~= ARGV[1] or record[2] ~= ARGV[2] then return -1 end
redis.call('DEL', KEYS[1])
return 1
)lua");
  return script;
}

}  // namespace

// Reads `keys` (full keys) in one pipeline: TYPE, HMGET of the record's
// fields and `created`, PTTL for each, and TIME once. Keys that no longer
// exist are left out; a key that holds something else, or a record that
// does not decode, is a damaged row, never an exception.
std::vector<EffectRow> read_effects(redis::Client& client, const std::vector<std::string>& keys,
                                    std::string_view prefix, bool with_results) {
  std::vector<EffectRow> rows;
  if (keys.empty()) return rows;
  redis::Pipeline pipeline;
  for (const std::string& key : keys) {
    pipeline.add({"TYPE", key});
    if (with_results) {
      pipeline.add({"HMGET", key, "state", "token", "fp", "result", "error", "lease_until",
                    "holder", "created"});
    } else {
      pipeline.add(
          {"HMGET", key, "state", "token", "fp", "error", "lease_until", "holder", "created"});
    }
    pipeline.add({"PTTL", key});
  }
  pipeline.add({"TIME"});
  std::vector<redis::Reply> replies = client.pipeline(pipeline);
  if (replies.size() != keys.size() * 3 + 1) {
    throw ProtocolError(fmt::format("{} replies to a pipeline of {} commands", replies.size(),
                                    keys.size() * 3 + 1));
  }
  if (!with_results) {
    // The fields as the decoder reads them: a nil result in its place.
    for (std::size_t i = 0; i < keys.size(); ++i) {
      redis::Reply& fields = replies[3 * i + 1];
      if (fields.type() != redis::Reply::Type::kArray || fields.array().size() != 7) continue;
      std::vector<redis::Reply> padded = fields.array();
      padded.insert(padded.begin() + 3, redis::Reply::nil());
      fields = redis::Reply::array(std::move(padded));
    }
  }
  const redis::Reply& time = replies.back();
  const std::int64_t now_ms = [&]() -> std::int64_t {
    const auto& parts = time.check("TIME").array();
    if (parts.size() != 2) throw ProtocolError("TIME answered " + time.debug_string());
    return std::stoll(parts[0].str()) * 1000 + std::stoll(parts[1].str()) / 1000;
  }();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EffectRow row{.key = keys[i]};
    if (!split_effect_key(keys[i], prefix, row.type, row.id)) continue;
    const redis::Reply& type = replies[3 * i];
    if (!type.is_error() && type.str() == "none") continue;  // gone since SCAN
    try {
      std::vector<redis::Reply> one = {type, replies[3 * i + 1], replies[3 * i + 2], time};
      row.record = idempotency::detail::decode_inspect_replies(keys[i], one);
      if (!row.record) continue;
      static const std::set<std::string_view> kStored = {"in_progress", "completed", "failed",
                                                         "unavailable", "released"};
      if (!kStored.contains(row.record->state)) {
        row.error = fmt::format("effect record '{}' has unknown state '{}'", keys[i],
                                printable(row.record->state));
        row.record.reset();
      }
      const auto& fields = replies[3 * i + 1].array();
      if (row.record && fields.size() >= 8) {
        if (const auto created = fields[7].optional_str()) {
          std::int64_t at = 0;
          const auto [stop, error] =
              std::from_chars(created->data(), created->data() + created->size(), at);
          if (error == std::errc() && stop == created->data() + created->size()) {
            row.age = milliseconds(std::max<std::int64_t>(0, now_ms - at));
          }
        }
      }
    } catch (const Error& error) {  // DecodeError, ProtocolError, ReplyError
      row.record.reset();
      row.error = error.what();
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

nlohmann::json effect_json(const EffectRow& row) {
  nlohmann::json out = {{"key", json_bytes(row.key)},
                        {"type", json_bytes(row.type)},
                        {"id", json_bytes(row.id)},
                        {"state", row.shown_state()}};
  if (!row.record) {
    out["error"] = json_bytes(row.error);
    return out;
  }
  const EffectRecord& r = *row.record;
  out["stored_state"] = json_bytes(r.state);
  out["token"] = r.token;
  out["holder_id"] = json_bytes(r.holder_id);
  out["fingerprint"] = json_bytes(r.fingerprint);
  out["result"] = json_bytes(r.result);
  out["error"] = json_bytes(r.error);
  out["lease_live"] = row.lease_live();
  out["lease_remaining_ms"] = r.lease_remaining.count();
  out["ttl_remaining_ms"] = r.ttl_remaining.count();
  out["age_ms"] = row.age ? nlohmann::json(row.age->count()) : nlohmann::json();
  return out;
}

std::string lease_cell(const EffectRow& row) {
  if (!row.record || row.record->state != "in_progress") return "";
  return row.lease_live() ? format_duration(row.record->lease_remaining) + " left" : "expired";
}

// A one-line summary of what a record is, for clear's messages.
std::string effect_summary(const EffectRow& row) {
  if (!row.record) return fmt::format("damaged record ({})", row.error);
  const EffectRecord& r = *row.record;
  std::string text = fmt::format("state {}, token {}", row.shown_state(), r.token);
  if (r.state == "in_progress") text += ", lease " + lease_cell(row);
  if (row.age) text += ", created " + format_duration(*row.age) + " ago";
  if (r.state == "completed") text += ", result " + printable(r.result);
  if (r.state == "failed" || r.state == "unavailable") text += ", error " + printable(r.error);
  return text;
}

std::optional<std::string> clear_refusal(const EffectRow& row, std::string_view force) {
  if (row.lease_live()) {
    return fmt::format(
        "refusing to clear {} ({}): its effect may be running now, and clearing it lets a "
        "second worker run it again. Wait for the lease to end, or pass {} if you know "
        "the worker is gone",
        printable(row.key, 200), effect_summary(row), force);
  }
  if (row.damaged()) {
    return fmt::format("refusing to clear {}: {}. Pass {} to delete it anyway",
                       printable(row.key, 200), row.error, force);
  }
  return std::nullopt;
}

ClearOutcome clear_effect(redis::Client& client, const EffectRow& row) {
  long long deleted = 0;
  if (row.damaged()) {
    deleted = client.del(row.key);
  } else {
    const std::string token = std::to_string(row.record->token);
    deleted = clear_script().run(client, {row.key}, {row.record->state, token}).integer();
  }
  if (deleted == -1) return ClearOutcome::kChanged;
  return deleted == 1 ? ClearOutcome::kDeleted : ClearOutcome::kGone;
}

}  // namespace prodsafe::cli
