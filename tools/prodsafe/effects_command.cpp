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

#include "effect_records.hpp"
#include "ops_commands.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/idempotency/effect_type.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/endpoint.hpp"

namespace prodsafe::cli {
namespace {

using idempotency::EffectRecord;
using std::chrono::milliseconds;

constexpr std::size_t kScanCount = 500;

const std::set<std::string_view> kStates = {"in_progress", "expired",  "completed", "failed",
                                            "unavailable", "released", "damaged"};

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
        for (const EffectRow& row : shown) out["effects"].push_back(effect_json(row));
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
        out["effect"] = effect_json(row);
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
    const std::string about = effect_summary(row);
    out["key"] = json_bytes(full_key);
    out["effect"] = effect_json(row);
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
    if (!arguments.force) {
      if (const auto why = clear_refusal(row, "--force")) return refuse(*why);
    }
    if (!ops.json) fmt::print("About to delete {}: {}\n", printable(full_key, 200), about);
    const ClearOutcome outcome = clear_effect(*client, row);
    if (outcome == ClearOutcome::kChanged) {
      return refuse(
          fmt::format("{} changed while it was being cleared (claimed, committed or "
                      "recovered); nothing was deleted. Look again with `effects show`",
                      full_key));
    }
    const bool deleted = outcome == ClearOutcome::kDeleted;
    out["deleted"] = deleted;
    if (ops.json) {
      print_json(out);
    } else if (deleted) {
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
