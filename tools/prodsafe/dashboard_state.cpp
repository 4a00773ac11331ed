#include "dashboard_state.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include <fmt/format.h>

#include "breaker_rows.hpp"
#include "commands.hpp"
#include "failure.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/retry/fleet_histogram.hpp"
#include "prodsafe/runtime_checks/redis_runtime_validator.hpp"
#include "retry_stats.hpp"

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

// Advances the walk of the keys under `prefix` (begun when `scan` is null:
// `begin` runs then) by SCAN calls of kScanCount until about `budget` keys
// were asked for or the walk ends, handing each call's keys to `batch`. A
// throw drops the walk, so that the next call begins a fresh one (the keys
// of the failed call would be missing from it), and is rethrown. True when
// the walk ended (`scan` is then null).
template <class Begin, class Batch>
bool walk(std::unique_ptr<ResumableScan>& scan, redis::Client& client, const std::string& prefix,
          std::size_t budget, Begin&& begin, Batch&& batch) {
  try {
    if (!scan) {
      scan = std::make_unique<ResumableScan>(client, glob_escape(prefix) + "*", kScanCount);
      begin();
    }
    std::size_t asked = 0;
    while (!scan->done() && asked < budget) {
      batch(scan->step());
      asked += kScanCount;
    }
  } catch (...) {
    scan.reset();
    throw;
  }
  if (!scan->done()) return false;
  scan.reset();
  return true;
}

}  // namespace

void EffectCensus::count(EffectRow row) {
  Tally& t = current_;
  ++t.records;
  const std::string state = row.shown_state();
  ++t.by_type[row.type][state];
  if (row.record && row.record->state == "in_progress") {
    if (!t.oldest_in_progress || age_of(row) > age_of(*t.oldest_in_progress)) {
      t.oldest_in_progress = row;
    }
  }
  // Orphans: oldest first; failed: newest first. Each list kept short.
  const auto keep = [this](std::vector<EffectRow>& rows, EffectRow item, bool oldest_first) {
    rows.push_back(std::move(item));
    std::sort(rows.begin(), rows.end(), [&](const EffectRow& a, const EffectRow& b) {
      return oldest_first ? age_of(a) > age_of(b) : age_of(a) < age_of(b);
    });
    if (rows.size() > rows_kept_) rows.pop_back();
  };
  if (state == "expired")
    keep(t.orphans, std::move(row), true);
  else if (state == "failed")
    keep(t.failed, std::move(row), false);
}

void EffectCensus::advance(redis::Client& client, std::size_t budget) {
  const std::string prefix = client.key("effect:");
  const bool ended = walk(
      scan_, client, prefix, budget, [&] { current_ = Tally{.started = SystemClock::now()}; },
      [&](const std::vector<std::string>& keys) {
        ++current_.scan_calls;
        current_.keys_examined += keys.size();
        // Without results: counting needs none, and a cached one can be large.
        for (EffectRow& row : read_effects(client, keys, prefix, false)) count(std::move(row));
      });
  if (ended) {
    complete_ = std::move(current_);
    current_ = Tally{};
    completed_at_ = SystemClock::now();
    ++sweeps_;
  }
}

nlohmann::json EffectCensus::json() const {
  // The last complete sweep, else the one under way (marked incomplete).
  const Tally& shown = complete_ ? *complete_ : current_;
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

void NameSweep::advance(redis::Client& client, std::size_t budget) {
  const std::string prefix = client.key(prefix_);
  const bool ended = walk(
      scan_, client, prefix, budget, [&] { current_.clear(); },
      [&](const std::vector<std::string>& keys) {
        for (const std::string& key : keys) {
          std::string name = key.substr(prefix.size());
          if (accept_(name)) current_.insert(std::move(name));
        }
      });
  if (ended) {
    complete_ = std::move(current_);
    current_.clear();
  }
}

std::set<std::string> NameSweep::names() const {
  std::set<std::string> all = complete_;
  all.insert(current_.begin(), current_.end());
  return all;
}

void WindowCensus::keep_longest(std::vector<WindowRow>& windows) const {
  const auto longest_first = [](const WindowRow& a, const WindowRow& b) {
    return a.open_for != b.open_for ? a.open_for > b.open_for : a.job_id < b.job_id;
  };
  const std::size_t kept = std::min(shown_, windows.size());
  std::partial_sort(windows.begin(), windows.begin() + static_cast<std::ptrdiff_t>(kept),
                    windows.end(), longest_first);
  windows.resize(kept);
}

void WindowCensus::advance(redis::Client& client, std::size_t budget) {
  const std::string prefix = client.key("retry:window:");
  const bool ended = walk(
      scan_, client, prefix, budget, [&] { current_ = RetryStats{}; },
      [&](const std::vector<std::string>& keys) {
        for (WindowRow& row : read_retry_windows(client, keys, prefix)) {
          ++current_.open_total;
          if (row.error.empty()) ++current_.open_by_type[row.job_type];
          current_.windows.push_back(std::move(row));
        }
        if (current_.windows.size() > 2 * shown_) keep_longest(current_.windows);
      });
  if (ended) {
    keep_longest(current_.windows);
    complete_ = std::move(current_);
    current_ = RetryStats{};
  }
}

RetryStats WindowCensus::stats() const {
  RetryStats shown = complete_ ? *complete_ : current_;
  keep_longest(shown.windows);
  return shown;
}

FleetView::FleetView(std::shared_ptr<redis::Client> client, FleetViewOptions options)
    : client_(std::move(client)),
      options_(std::move(options)),
      breakers_("circuit:", [](std::string_view name) { return job_type_problem(name).empty(); }),
      histograms_("retry:histogram:", [](std::string_view) { return true; }),
      windows_(options_.windows_shown) {}

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
  const breaker::BreakerRules& rules = options_.rules;
  out["breaker_rules"] = {{"failure_threshold", rules.failure_threshold},
                          {"window_ms", rules.time_window.count()},
                          {"buckets", rules.window_buckets}};
  out["breakers"] = nlohmann::json::array();
  breaker::RedisBreakerStore store(client_);
  breakers_.advance(client, options_.scan_budget);
  for (const std::string& job_type : breakers_.names()) {
    out["breakers"].push_back(
        section([&] { return breaker_json(read_breaker(store, job_type, rules)); }));
    out["breakers"].back()["job_type"] = json_bytes(job_type);
  }
  out["retry"] = section([&] {
    histograms_.advance(client, options_.scan_budget);
    windows_.advance(client, options_.scan_budget);
    RetryStats stats = windows_.stats();
    retry::FleetHistogram histogram(client_);
    for (const std::string& job_type : histograms_.names()) {
      stats.histograms.push_back(read_histogram_row(histogram, job_type));
    }
    nlohmann::json retry = nlohmann::json::object();
    add_retry_stats_json(stats, retry);
    retry["open_windows"]["complete"] = windows_.complete();
    return retry;
  });
  out["effects"] = section([&] {
    census_.advance(client, options_.scan_budget);
    return census_.json();
  });
  const auto now = std::chrono::steady_clock::now();
  if (!checked_ || now - checks_at_ >= options_.checks_every) {
    // A failure is kept until the next run, as results are.
    checks_ = section([&] {
      runtime_checks::RedisRuntimeValidator validator(client_,
                                                      {.latency_samples = kLatencySamples});
      nlohmann::json checks = nlohmann::json::object();
      add_check_results_json(validator.run(), checks);
      return checks;
    });
    checks_at_ = now;
    checked_ = true;
  }
  out["checks"] = checks_;
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
