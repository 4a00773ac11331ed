// `prodsafe effects list | show TYPE ID | clear TYPE ID`: the effect records
// RedisEffectStore keeps (one hash per effect, effect:<TYPE>:<entity_id>).
#include <algorithm>
#include <charconv>
#include <iostream>
#include <map>
#include <set>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "ops_commands.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/idempotency/effect_type.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/script.hpp"
#include "redis_effect_reply.hpp"

namespace prodsafe::cli {
namespace {

using idempotency::EffectRecord;
using std::chrono::milliseconds;

constexpr std::size_t kScanCount = 500;

const std::set<std::string_view> kStates = {"in_progress", "expired",  "completed", "failed",
                                            "unavailable", "released", "damaged"};

// One effect record as the commands report it: the store's decoding
// (detail::decode_inspect_replies, as RedisEffectStore::inspect) plus its
// age, or why it cannot be read.
struct EffectRow {
  std::string key{};  // as stored (with the key prefix)
  std::string type{};
  std::string id{};
  std::optional<EffectRecord> record{};  // nullopt: damaged (error says why)
  std::string error{};
  std::optional<milliseconds> age{};  // since the record was created; nullopt: not recorded

  [[nodiscard]] bool damaged() const { return !record; }
  [[nodiscard]] bool lease_live() const {
    return record && record->state == "in_progress" && record->lease_remaining.count() > 0;
  }
  // "in_progress" with a lease that ran out reads "expired"; "damaged" for garbage.
  [[nodiscard]] std::string shown_state() const {
    if (!record) return "damaged";
    if (record->state == "in_progress" && !lease_live()) return "expired";
    return record->state;
  }
};

// Splits "<prefix>effect:<TYPE>:<id>"; false when the key is not so shaped.
bool split_key(std::string_view key, std::string_view prefix, std::string& type, std::string& id) {
  if (!key.starts_with(prefix)) return false;
  key.remove_prefix(prefix.size());
  const std::size_t colon = key.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == key.size()) return false;
  type = std::string(key.substr(0, colon));
  id = std::string(key.substr(colon + 1));
  return true;
}

// Reads `keys` (full keys) in one pipeline: TYPE, HMGET of the record's
// fields and `created`, PTTL for each, and TIME once. Keys that no longer
// exist are left out; a key that holds something else, or a record that
// does not decode, is a damaged row, never an exception.
std::vector<EffectRow> read_effects(redis::Client& client, const std::vector<std::string>& keys,
                                    std::string_view prefix) {
  std::vector<EffectRow> rows;
  if (keys.empty()) return rows;
  redis::Pipeline pipeline;
  for (const std::string& key : keys) {
    pipeline.add({"TYPE", key})
        .add({"HMGET", key, "state", "token", "fp", "result", "error", "lease_until", "holder",
              "created"})
        .add({"PTTL", key});
  }
  pipeline.add({"TIME"});
  const std::vector<redis::Reply> replies = client.pipeline(pipeline);
  if (replies.size() != keys.size() * 3 + 1) {
    throw ProtocolError(fmt::format("{} replies to a pipeline of {} commands", replies.size(),
                                    keys.size() * 3 + 1));
  }
  const redis::Reply& time = replies.back();
  const std::int64_t now_ms = [&]() -> std::int64_t {
    const auto& parts = time.check("TIME").array();
    if (parts.size() != 2) throw ProtocolError("TIME answered " + time.debug_string());
    return std::stoll(parts[0].str()) * 1000 + std::stoll(parts[1].str()) / 1000;
  }();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EffectRow row{.key = keys[i]};
    if (!split_key(keys[i], prefix, row.type, row.id)) continue;
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

nlohmann::json row_json(const EffectRow& row) {
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

std::vector<std::string> row_cells(const EffectRow& row) {
  if (!row.record) return {row.type, printable(row.id, 40), "damaged", "", "", "", "", row.error};
  const EffectRecord& r = *row.record;
  std::string note{};
  if (r.state == "failed" || r.state == "unavailable") note = printable(r.error, 50);
  if (r.state == "completed") note = "result " + printable(r.result, 40);
  return {row.type,
          printable(row.id, 40),
          row.shown_state(),
          std::to_string(r.token),
          row.age ? format_duration(*row.age) : "?",
          lease_cell(row),
          r.ttl_remaining.count() > 0 ? format_duration(r.ttl_remaining) : "none",
          note};
}

const std::vector<std::string> kHeader = {"TYPE", "ID",    "STATE", "TOKEN",
                                          "AGE",  "LEASE", "TTL",   "RESULT / ERROR"};

// A one-line summary of what a record is, for clear's messages.
std::string summary(const EffectRow& row) {
  if (!row.record) return fmt::format("damaged record ({})", row.error);
  const EffectRecord& r = *row.record;
  std::string text = fmt::format("state {}, token {}", row.shown_state(), r.token);
  if (r.state == "in_progress") text += ", lease " + lease_cell(row);
  if (row.age) text += ", created " + format_duration(*row.age) + " ago";
  if (r.state == "completed") text += ", result " + printable(r.result);
  if (r.state == "failed" || r.state == "unavailable") text += ", error " + printable(r.error);
  return text;
}

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

int run_effects(const EffectsArguments& arguments) {
  const OpsArguments& ops = arguments.ops;
  const std::string url = redis::redact_url(ops.url);
  const FailureOutput output = ops_failure_output("effects", ops.json, url);
  std::optional<milliseconds> older_than{};
  if (!arguments.older_than.empty()) {
    older_than = parse_duration(arguments.older_than);
    if (!older_than) {
      return report(output, usage_failure(fmt::format(
                                "--older-than must be a duration such as 30s, 5m, 2h or 1d, "
                                "not '{}'",
                                arguments.older_than)));
    }
  }
  if (!arguments.state.empty() && !kStates.contains(arguments.state)) {
    return report(output, usage_failure(fmt::format(
                              "--state must be in_progress, expired, completed, failed, "
                              "unavailable, released or damaged, not '{}'",
                              arguments.state)));
  }
  std::string logical_key{};
  try {
    if (!arguments.type.empty()) (void)idempotency::EffectType(arguments.type);
    if (arguments.action != "list") {
      logical_key = idempotency::effect_key(idempotency::EffectType(arguments.type), arguments.id);
    }
  } catch (const InvalidArgument& error) {
    return report(output, usage_failure(error.what()));
  }
  logger()->set_level(spdlog::level::off);  // the command reports for itself

  try {
    auto client = ops_client(ops);
    const std::string prefix = client->key("effect:");
    nlohmann::json out = ops_json(url, kExitOk);

    if (arguments.action == "list") {
      const std::string pattern =
          glob_escape(prefix) + (arguments.type.empty() ? "" : glob_escape(arguments.type) + ":") +
          "*";
      std::vector<EffectRow> shown;
      std::map<std::string, std::map<std::string, std::uint64_t>> counts;  // type -> state -> n
      std::uint64_t matched = 0;
      std::set<std::string> seen;  // SCAN may return a key twice
      scan_keys(*client, pattern, kScanCount, [&](const std::vector<std::string>& keys) {
        std::vector<std::string> fresh;
        for (const std::string& key : keys) {
          if (seen.insert(key).second) fresh.push_back(key);
        }
        for (EffectRow& row : read_effects(*client, fresh, prefix)) {
          if (!arguments.state.empty() && row.shown_state() != arguments.state &&
              !(arguments.state == "in_progress" && row.shown_state() == "expired")) {
            continue;
          }
          if (older_than && (!row.age || *row.age < *older_than)) continue;
          ++matched;
          ++counts[row.type][row.shown_state()];
          if (shown.size() < arguments.limit) shown.push_back(std::move(row));
        }
        return true;
      });
      std::sort(shown.begin(), shown.end(),
                [](const EffectRow& a, const EffectRow& b) { return a.key < b.key; });
      if (ops.json) {
        out["matched"] = matched;
        out["shown"] = shown.size();
        out["truncated"] = matched > shown.size();
        out["counts"] = nlohmann::json::object();
        for (const auto& [type, states] : counts) out["counts"][type] = states;
        out["effects"] = nlohmann::json::array();
        for (const EffectRow& row : shown) out["effects"].push_back(row_json(row));
        print_json(out);
        return kExitOk;
      }
      if (matched == 0) {
        fmt::print("No effect records match in {}\n", url);
        return kExitOk;
      }
      Table table(kHeader);
      for (const EffectRow& row : shown) table.add(row_cells(row));
      fmt::print("Effect records in {}:\n\n{}", url, table.str());
      if (matched > shown.size()) {
        fmt::print("\n{} of {} shown (--limit {}).\n", shown.size(), matched, arguments.limit);
      }
      Table totals({"TYPE", "STATE", "RECORDS"});
      for (const auto& [type, states] : counts) {
        for (const auto& [state, n] : states) totals.add({type, state, std::to_string(n)});
      }
      fmt::print("\nBy type and state:\n\n{}", totals.str());
      return kExitOk;
    }

    const std::string full_key = client->key(logical_key);
    const std::vector<EffectRow> rows = read_effects(*client, {full_key}, prefix);
    if (rows.empty()) {
      return report(output, Failure{.message = fmt::format("no effect record {}", full_key)});
    }
    const EffectRow& row = rows.front();

    if (arguments.action == "show") {
      if (ops.json) {
        out["effect"] = row_json(row);
        print_json(out);
        return row.damaged() ? kExitFailed : kExitOk;
      }
      Table table({"FIELD", "VALUE"});
      table.add({"key", printable(row.key, 200)});
      table.add({"state", row.shown_state()});
      if (row.damaged()) {
        table.add({"problem", row.error});
      } else {
        const EffectRecord& r = *row.record;
        table.add({"stored state", r.state});
        table.add({"token", std::to_string(r.token)});
        table.add({"holder", printable(r.holder_id)});
        table.add({"fingerprint", printable(r.fingerprint, 80)});
        if (r.state == "in_progress") table.add({"lease", lease_cell(row)});
        table.add({"age", row.age ? format_duration(*row.age) : "not recorded"});
        table.add({"expires in",
                   r.ttl_remaining.count() > 0 ? format_duration(r.ttl_remaining) : "never"});
        if (!r.result.empty()) table.add({"result", printable(r.result, 400)});
        if (!r.error.empty()) table.add({"error", printable(r.error, 400)});
      }
      fmt::print("{}", table.str());
      return row.damaged() ? kExitFailed : kExitOk;
    }

    // clear: say what is about to go, refuse a live claim or garbage unless
    // --force, delete only what was read.
    const std::string about = summary(row);
    out["key"] = json_bytes(full_key);
    out["effect"] = row_json(row);
    out["forced"] = arguments.force;
    auto refuse = [&](const std::string& why) {
      out["deleted"] = false;
      out["exit_code"] = kExitFailed;
      out["error"] = {{"kind", "failed"}, {"code", nullptr}, {"message", why}};
      if (ops.json) {
        print_json(out);
      } else {
        std::cerr << "prodsafe effects: " << why << "\n";
      }
      return kExitFailed;
    };
    if (row.lease_live() && !arguments.force) {
      return refuse(fmt::format(
          "refusing to clear {} ({}): its effect may be running now, and clearing it lets a "
          "second worker run it again. Wait for the lease to end, or pass --force if you know "
          "the worker is gone",
          full_key, about));
    }
    if (row.damaged() && !arguments.force) {
      return refuse(fmt::format("refusing to clear {}: {}. Pass --force to delete it anyway",
                                full_key, row.error));
    }
    if (!ops.json) fmt::print("About to delete {}: {}\n", printable(full_key, 200), about);
    long long deleted = 0;
    if (row.damaged()) {
      deleted = client->del(full_key);
    } else {
      const std::string token = std::to_string(row.record->token);
      deleted = clear_script().run(*client, {full_key}, {row.record->state, token}).integer();
    }
    if (deleted == -1) {
      return refuse(
          fmt::format("{} changed while it was being cleared (claimed, committed or "
                      "recovered); nothing was deleted. Look again with `effects show`",
                      full_key));
    }
    out["deleted"] = deleted == 1;
    if (ops.json) {
      print_json(out);
    } else if (deleted == 1) {
      fmt::print("Deleted {}: the next call for it runs the effect again.\n",
                 printable(full_key, 200));
    } else {
      fmt::print("{} was already gone.\n", printable(full_key, 200));
    }
    return kExitOk;
  } catch (const std::exception& error) {
    return report(output, failure_of(error));
  }
}

}  // namespace prodsafe::cli
