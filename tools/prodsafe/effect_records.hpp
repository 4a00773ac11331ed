// Effect records as the operator commands (`prodsafe effects`) and the
// dashboard read them: RedisEffectStore's hashes (effect:<TYPE>:<entity_id>)
// decoded with the store's own decoder, and clearing one safely.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "prodsafe/idempotency/effect_store.hpp"

namespace prodsafe::redis {
class Client;
}

namespace prodsafe::cli {

// One effect record (the store's decoding, detail::decode_inspect_replies, as
// RedisEffectStore::inspect) plus its age, or why it cannot be read.
struct EffectRow {
  std::string key{};  // as stored (with the key prefix)
  std::string type{};
  std::string id{};
  std::optional<idempotency::EffectRecord> record{};  // nullopt: damaged (error says why)
  std::string error{};
  std::optional<std::chrono::milliseconds> age{};  // since created; nullopt: not recorded

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

// Splits "<prefix><TYPE>:<id>" (prefix = client.key("effect:")); false when
// the key is not so shaped.
[[nodiscard]] bool split_effect_key(std::string_view key, std::string_view prefix,
                                    std::string& type, std::string& id);

// Reads `keys` (full keys, under `prefix` = client.key("effect:")) in one
// pipeline: TYPE, HMGET of the record's fields and `created`, PTTL for each,
// and TIME once. Keys that no longer exist, or are not shaped
// <prefix><TYPE>:<id>, are left out; a key that holds something else, or a
// record that does not decode, is a damaged row, never an exception. Throws
// what the client throws when Redis cannot be reached. Without
// `with_results` the records' results are not read (record->result is
// empty): for counting, where a cached result can be large.
[[nodiscard]] std::vector<EffectRow> read_effects(redis::Client& client,
                                                  const std::vector<std::string>& keys,
                                                  std::string_view prefix,
                                                  bool with_results = true);

// The row as `effects list --json` and the dashboard show it.
[[nodiscard]] nlohmann::json effect_json(const EffectRow& row);

// "12s left", "expired", or "" when the record is not in progress.
[[nodiscard]] std::string lease_cell(const EffectRow& row);

// A one-line summary of what a record is, for clear's messages.
[[nodiscard]] std::string effect_summary(const EffectRow& row);

// Why clearing `row` is refused unless forced (a live lease: its effect may
// be running now; a damaged record), or nullopt when it may be cleared.
// `force` names how to force it ("--force").
[[nodiscard]] std::optional<std::string> clear_refusal(const EffectRow& row,
                                                       std::string_view force);

enum class ClearOutcome { kDeleted, kGone, kChanged };

// Deletes the record only if it still has the state and token it was read
// with (a claim, commit or recovery in between leaves it alone: kChanged); a
// damaged row is deleted as it is.
[[nodiscard]] ClearOutcome clear_effect(redis::Client& client, const EffectRow& row);

}  // namespace prodsafe::cli
