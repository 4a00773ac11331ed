#include "dashboard_state.hpp"

#include <algorithm>
#include <charconv>
#include <exception>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "breaker_rows.hpp"
#include "commands.hpp"
#include "failure.hpp"
#include "prodsafe/alerts/recent_alerts.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/retry/fleet_histogram.hpp"
#include "prodsafe/runtime_checks/redis_runtime_validator.hpp"

namespace prodsafe::cli {
namespace {

using std::chrono::milliseconds;
using SystemClock = std::chrono::system_clock;

// Keys asked for per SCAN call: a bounded amount of work on the server.
constexpr std::size_t kScanCount = 500;
// PINGs the dashboard's runtime checks time (the checks' default is 20).
constexpr std::size_t kLatencySamples = 5;

std::int64_t epoch_ms(SystemClock::time_point at) {
  return std::chrono::duration_cast<milliseconds>(at.time_since_epoch()).count();
}

milliseconds age_of(const EffectRow& row) { return row.age.value_or(milliseconds(-1)); }

// True when `error` means Redis could not be reached or refused us (the
// document then says "unreachable"), as the commands' exit code 2 does; but
// a command the user may not run (NOPERM: an ACL without INFO, say) fails
// only the section that needs it.
bool unreachable(const std::exception& error) {
  if (const auto* reply = dynamic_cast<const ReplyError*>(&error);
      reply != nullptr && reply->prefix() == "NOPERM") {
    return false;
  }
  return failure_of(error).exit_code == kExitUnreachable;
}

// Runs `read` for one section of the document: its value, or {"error": ...}
// when it failed for a reason of its own (a key of the wrong type, say).
// Unreachable Redis is rethrown: the whole document reports it.
template <class Read>
nlohmann::json section(Read&& read) {
  try {
    return read();
  } catch (const std::exception& error) {
    if (unreachable(error)) throw;
    return {{"error", json_bytes(error.what())}};
  }
}

// TIME's reply in milliseconds.
std::int64_t server_time_ms(const redis::Reply& time) {
  const auto& parts = time.check("TIME").array();
  if (parts.size() != 2) throw ProtocolError("TIME answered " + time.debug_string());
  return std::stoll(parts[0].str()) * 1000 + std::stoll(parts[1].str()) / 1000;
}

std::optional<std::int64_t> to_ms(const redis::Reply& field) {
  const auto text = field.optional_str();
  if (!text) return std::nullopt;
  std::int64_t value = 0;
  const auto [stop, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc() || stop != text->data() + text->size()) return std::nullopt;
  return value;
}

// What the census needs of a record, from HMGET state lease_until created:
// its state as shown ("expired" for in_progress past its lease, "damaged" for
// a key of another type or a record that does not decode), its age; an empty
// state when the key is gone.
struct LightRecord {
  std::string state{};
  std::optional<milliseconds> age{};
};

LightRecord read_light(const redis::Reply& reply, std::int64_t now) {
  static const std::set<std::string_view> kStored = {"in_progress", "completed", "failed",
                                                     "unavailable", "released"};
  if (reply.is_error() || reply.type() != redis::Reply::Type::kArray || reply.array().size() != 3) {
    return {.state = "damaged"};
  }
  const auto& fields = reply.array();
  const auto state = fields[0].optional_str();
  if (!state) {
    const bool gone = !fields[1].optional_str() && !fields[2].optional_str();
    return {.state = gone ? "" : "damaged"};
  }
  if (!kStored.contains(*state)) return {.state = "damaged"};
  LightRecord record{.state = *state};
  if (const auto created = to_ms(fields[2]))
    record.age = milliseconds(std::max<std::int64_t>(0, now - *created));
  if (record.state == "in_progress") {
    const auto lease_until = to_ms(fields[1]);
    if (!lease_until) return {.state = "damaged"};
    if (*lease_until <= now) record.state = "expired";
  }
  return record;
}

}  // namespace

void FleetCensus::keep(EffectRow row) {
  Tally& t = current_;
  const std::string state = row.shown_state();
  if (row.record && row.record->state == "in_progress") {
    if (!t.oldest_in_progress || age_of(row) > age_of(*t.oldest_in_progress)) {
      t.oldest_in_progress = row;
    }
  }
  // Orphans: oldest first; failed: newest first. Each list kept short.
  const auto keep_in = [this](std::vector<EffectRow>& rows, EffectRow item, bool oldest_first) {
    std::erase_if(rows, [&](const EffectRow& r) { return r.key == item.key; });
    rows.push_back(std::move(item));
    std::sort(rows.begin(), rows.end(), [&](const EffectRow& a, const EffectRow& b) {
      return oldest_first ? age_of(a) > age_of(b) : age_of(a) < age_of(b);
    });
    if (rows.size() > rows_kept_) rows.pop_back();
  };
  if (state == "expired") {
    keep_in(t.orphans, std::move(row), true);
  } else if (state == "failed") {
    keep_in(t.failed, std::move(row), false);
  }
}

// One SCAN reply's keys: one HMGET (state, lease_until, created) each, in one
// pipeline with TIME, counted by type and state; the few that enter the
// lists shown are then read in full (read_effects).
void FleetCensus::count_effects(redis::Client& client, const std::vector<std::string>& keys,
                                const std::string& prefix) {
  if (keys.empty()) return;
  redis::Pipeline pipeline;
  for (const std::string& key : keys)
    pipeline.add({"HMGET", key, "state", "lease_until", "created"});
  pipeline.add({"TIME"});
  const std::vector<redis::Reply> replies = client.pipeline(pipeline);
  if (replies.size() != keys.size() + 1) {
    throw ProtocolError(
        fmt::format("{} replies to a pipeline of {} commands", replies.size(), keys.size() + 1));
  }
  const std::int64_t now = server_time_ms(replies.back());
  Tally& t = current_;
  std::vector<std::string> wanted;  // to read in full: they may enter a list
  const auto worse = [this](const std::vector<EffectRow>& rows, milliseconds age, bool oldest) {
    if (rows.size() < rows_kept_) return true;
    return oldest ? age > age_of(rows.back()) : age < age_of(rows.back());
  };
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::string type;
    std::string id;
    if (!split_effect_key(keys[i], prefix, type, id)) continue;
    const LightRecord record = read_light(replies[i], now);
    if (record.state.empty()) continue;  // gone since SCAN
    ++t.records;
    ++t.by_type[type][record.state];
    const milliseconds age = record.age.value_or(milliseconds(-1));
    const bool in_progress = record.state == "in_progress" || record.state == "expired";
    if ((record.state == "expired" && worse(t.orphans, age, true)) ||
        (record.state == "failed" && worse(t.failed, age, false)) ||
        (in_progress && (!t.oldest_in_progress || age > age_of(*t.oldest_in_progress)))) {
      wanted.push_back(keys[i]);
    }
  }
  for (EffectRow& row : read_effects(client, wanted, prefix, false)) keep(std::move(row));
}

void FleetCensus::count_windows(redis::Client& client, const std::vector<std::string>& keys,
                                const std::string& prefix) {
  Tally& t = current_;
  for (WindowRow& row : read_windows(client, keys, prefix)) {
    ++t.windows_open;
    if (row.error.empty()) ++t.windows_by_type[row.job_type];
    t.windows.push_back(std::move(row));
  }
  if (t.windows.size() > 2 * rows_kept_) {
    std::partial_sort(t.windows.begin(),
                      t.windows.begin() + static_cast<std::ptrdiff_t>(rows_kept_), t.windows.end(),
                      longest_first);
    t.windows.resize(rows_kept_);
  }
}

void FleetCensus::advance(redis::Client& client, std::size_t budget) {
  const std::string effect_prefix = client.key("effect:");
  const std::string circuit_prefix = client.key("circuit:");
  const std::string histogram_prefix = client.key("retry:histogram:");
  const std::string window_prefix = client.key("retry:window:");
  try {
    if (!scan_) {
      scan_ =
          std::make_unique<ResumableScan>(client, glob_escape(client.key("")) + "*", kScanCount);
      current_ = Tally{.started = SystemClock::now()};
    }
    std::size_t asked = 0;
    while (!scan_->done() && asked < budget) {
      const std::vector<std::string> keys = scan_->step();
      asked += kScanCount;
      ++current_.scan_calls;
      current_.keys_examined += keys.size();
      std::vector<std::string> effects;
      std::vector<std::string> windows;
      for (const std::string& key : keys) {
        if (key.starts_with(effect_prefix)) {
          effects.push_back(key);
        } else if (key.starts_with(window_prefix)) {
          windows.push_back(key);
        } else if (key.starts_with(circuit_prefix)) {
          std::string job_type = key.substr(circuit_prefix.size());
          if (job_type_problem(job_type).empty()) current_.breakers.insert(std::move(job_type));
        } else if (key.starts_with(histogram_prefix)) {
          current_.histograms.insert(key.substr(histogram_prefix.size()));
        }
      }
      count_effects(client, effects, effect_prefix);
      if (!windows.empty()) count_windows(client, windows, window_prefix);
    }
  } catch (...) {
    // Keys this sweep had from the failed call would be missing from it:
    // start a fresh sweep next time (the last complete one still shows).
    scan_.reset();
    throw;
  }
  if (scan_->done()) {
    std::sort(current_.windows.begin(), current_.windows.end(), longest_first);
    if (current_.windows.size() > rows_kept_) current_.windows.resize(rows_kept_);
    complete_ = std::move(current_);
    current_ = Tally{};
    completed_at_ = SystemClock::now();
    ++sweeps_;
    scan_.reset();
  }
}

std::set<std::string> FleetCensus::breaker_job_types() const {
  std::set<std::string> all = current_.breakers;
  if (complete_) all.insert(complete_->breakers.begin(), complete_->breakers.end());
  return all;
}

std::set<std::string> FleetCensus::histogram_job_types() const {
  std::set<std::string> all = current_.histograms;
  if (complete_) all.insert(complete_->histograms.begin(), complete_->histograms.end());
  return all;
}

void FleetCensus::add_windows(RetryStats& stats) const {
  const Tally& t = shown();
  stats.open_total = t.windows_open;
  stats.open_by_type = t.windows_by_type;
  stats.windows = t.windows;
  std::sort(stats.windows.begin(), stats.windows.end(), longest_first);
  if (stats.windows.size() > rows_kept_) stats.windows.resize(rows_kept_);
}

nlohmann::json FleetCensus::effects_json() const {
  // The last complete sweep, else the one under way (marked incomplete).
  const Tally& shown = this->shown();
  nlohmann::json out;
  out["complete"] = complete_.has_value();
  out["sweeps_completed"] = sweeps_;
  out["records"] = shown.records;
  out["by_type"] = nlohmann::json::object();
  for (const auto& [type, states] : shown.by_type) {
    nlohmann::json counts = nlohmann::json::object();
    for (const auto& [state, n] : states) counts[state] = n;
    out["by_type"][json_bytes(type).get<std::string>()] = counts;
  }
  const auto rows = [](const std::vector<EffectRow>& list) {
    nlohmann::json array = nlohmann::json::array();
    for (const EffectRow& row : list) array.push_back(effect_json(row));
    return array;
  };
  out["orphans"] = rows(shown.orphans);
  out["failed"] = rows(shown.failed);
  out["oldest_in_progress"] =
      shown.oldest_in_progress ? effect_json(*shown.oldest_in_progress) : nlohmann::json();
  out["sweep"] = {{"scan_calls", shown.scan_calls},
                  {"keys_examined", shown.keys_examined},
                  {"started_ms", epoch_ms(shown.started)},
                  {"completed_ms", complete_ ? nlohmann::json(epoch_ms(completed_at_)) : nullptr},
                  {"in_progress",
                   {{"scan_calls", current_.scan_calls},
                    {"keys_examined", current_.keys_examined},
                    {"active", scan_ != nullptr}}}};
  return out;
}

FleetView::FleetView(std::shared_ptr<redis::Client> client, FleetViewOptions options)
    : client_(std::move(client)), options_(std::move(options)) {}

nlohmann::json FleetView::refresh() {
  const auto started = std::chrono::steady_clock::now();
  const std::int64_t now_ms = epoch_ms(SystemClock::now());
  nlohmann::json doc = {{"schema_version", kJsonSchemaVersion},
                        {"generated_at_ms", now_ms},
                        {"redis", {{"url", options_.redacted_url}}}};
  try {
    doc.update(read_fleet());
    doc["redis"]["reachable"] = true;
    note_transitions(doc["breakers"], now_ms);
  } catch (const std::exception& error) {
    doc["redis"]["reachable"] = false;
    doc["redis"]["error"] = json_bytes(error.what());
  }
  doc["redis"]["read_ms"] =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started).count();
  doc["transitions"] = nlohmann::json::array();
  for (const nlohmann::json& transition : transitions_) doc["transitions"].push_back(transition);
  return doc;
}

nlohmann::json FleetView::read_fleet() {
  redis::Client& client = *client_;
  nlohmann::json out;
  // The walk first: it finds the breakers and histograms read below.
  out["effects"] = section([&] {
    census_.advance(client, options_.scan_budget);
    return census_.effects_json();
  });
  const breaker::BreakerRules& rules = options_.rules;
  out["breaker_rules"] = {{"failure_threshold", rules.failure_threshold},
                          {"window_ms", rules.time_window.count()},
                          {"buckets", rules.window_buckets}};
  out["breakers"] = nlohmann::json::array();
  breaker::RedisBreakerStore store(client_);
  for (const std::string& job_type : census_.breaker_job_types()) {
    nlohmann::json row =
        section([&] { return breaker_json(read_breaker(store, job_type, rules)); });
    row["job_type"] = json_bytes(job_type);
    out["breakers"].push_back(std::move(row));
  }
  out["alerts"] = section([&] {
    nlohmann::json alerts = nlohmann::json::array();
    for (const alerts::StoredAlert& alert :
         alerts::read_recent_alerts(client, options_.alerts_shown)) {
      nlohmann::json item = {{"id", alert.id}};
      if (alert.damaged()) {
        item["error"] = json_bytes(alert.damage);
        alerts.push_back(std::move(item));
        continue;
      }
      const alerts::AlertContext& context = alert.context;
      item["type"] = json_bytes(alert.event_type);
      item["message"] = json_bytes(alert.message);
      item["job_type"] = json_bytes(context.job_type);
      item["instance"] = json_bytes(context.instance);
      item["at_ms"] = epoch_ms(context.timestamp);
      if (!context.state.empty()) item["state"] = json_bytes(context.state);
      item["extra"] = nlohmann::json::object();
      for (const auto& [name, value] : context.extra) {
        item["extra"][json_bytes(name).get<std::string>()] = json_bytes(value);
      }
      alerts.push_back(std::move(item));
    }
    return alerts;
  });
  out["retry"] = section([&] {
    RetryStats stats;
    retry::FleetHistogram histogram(client_);
    for (const std::string& job_type : census_.histogram_job_types()) {
      stats.histograms.push_back(read_histogram(histogram, job_type));
    }
    census_.add_windows(stats);
    nlohmann::json retry = nlohmann::json::object();
    add_retry_stats_json(stats, retry);
    return retry;
  });
  const auto now = std::chrono::steady_clock::now();
  if (!checked_ || now - checks_at_ >= options_.checks_every) {
    checks_.clear();
    checks_error_.clear();
    try {
      runtime_checks::RedisRuntimeValidator validator(client_,
                                                      {.latency_samples = kLatencySamples});
      checks_ = validator.run();
    } catch (const std::exception& error) {
      if (unreachable(error)) throw;  // run again at the next refresh
      checks_error_ = error.what();   // shown until the next run
    }
    checks_at_ = now;
    checked_ = true;
  }
  out["checks"] = nlohmann::json::object();
  if (!checks_error_.empty()) {
    out["checks"]["error"] = json_bytes(checks_error_);
  } else {
    add_check_results_json(checks_, out["checks"]);
  }
  out["checks"]["age_ms"] = std::chrono::duration_cast<milliseconds>(now - checks_at_).count();
  return out;
}

void FleetView::note_transitions(const nlohmann::json& breakers, std::int64_t now_ms) {
  const bool first = !noted_;
  noted_ = true;
  std::map<std::string, std::string> states;
  for (const nlohmann::json& row : breakers) {
    if (!row.contains("state")) continue;
    const std::string job_type = row["job_type"].get<std::string>();
    const std::string state = row["state"].get<std::string>();
    states[job_type] = state;
    const auto before = last_states_.find(job_type);
    const bool changed = before != last_states_.end() && before->second != state;
    if (!first && (changed || before == last_states_.end())) {
      transitions_.push_front({{"at_ms", now_ms},
                               {"job_type", job_type},
                               {"from", changed ? nlohmann::json(before->second) : nullptr},
                               {"to", state}});
    }
  }
  last_states_ = std::move(states);
  while (transitions_.size() > options_.transitions_kept) transitions_.pop_back();
}

}  // namespace prodsafe::cli
