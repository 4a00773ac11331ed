// What `prodsafe dashboard` shows, read from Redis: one JSON document per
// refresh (docs/operations.md, "The dashboard", lists its fields).
//
// FleetView::refresh() walks a bounded slice of the keyspace (FleetCensus),
// reads the breakers and retry histograms it has found and the newest
// entries of the fleet's alert history (alerts:recent, written by
// RedisAlertStream), and, every `checks_every`, runs the runtime checks. It never throws: when
// Redis cannot be read the document says so ("redis": {"reachable": false, "error": ...}) and
// carries none of the fleet's data, so a page never shows stale values as
// current.
//
// Thread safety: not thread-safe; the dashboard calls it from one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "effect_records.hpp"
#include "ops_common.hpp"
#include "prodsafe/breaker/breaker_store.hpp"
#include "prodsafe/runtime_checks/check_result.hpp"
#include "retry_stats.hpp"

namespace prodsafe::redis {
class Client;
}

namespace prodsafe::cli {

// Walks the applications' keys (MATCH <key_prefix>*) with SCAN, a bounded
// number of keys per advance() so that a refresh never costs Redis more than
// that, however many keys there are, and sorts what it finds:
//   effect:<TYPE>:<id>       counted by type and state; the oldest in
//                            progress past their lease (likely orphans), the
//                            latest failed and the oldest in progress kept;
//   circuit:<job_type>       the breakers to read (every refresh);
//   retry:histogram:<job>    the histograms to read (every refresh);
//   retry:window:<job_id>    open retry windows, counted, the longest kept.
// A sweep over every key takes as many advances as it needs; the figures
// shown are the last complete sweep's (and the sweep in progress until the
// first completes); breakers and histograms are the union of both, so a new
// one shows as soon as the sweep reaches it. SCAN may return a key twice
// while Redis rehashes, so a count can be one or two high.
class FleetCensus {
 public:
  // `rows_kept`: the length of each list kept (orphans, failed, windows).
  explicit FleetCensus(std::size_t rows_kept = 20) : rows_kept_(rows_kept) {}

  // Walks on: SCAN calls of COUNT 500 until `budget` keys have been asked
  // for or the sweep ends. Each call's effect keys are read in one pipeline
  // (HMGET state, lease_until, created per key) and the few that enter a
  // list are read in full; its window keys in another. A hash with none of
  // those fields is taken for a record deleted since SCAN and not counted.
  // Throws what the client throws; the next advance() starts a new sweep
  // (the last complete one still shows).
  void advance(redis::Client& client, std::size_t budget);

  // {"complete", "sweeps_completed", "records", "by_type": {type: {state: n}},
  //  "orphans": [...], "failed": [...], "oldest_in_progress": row or null,
  //  "sweep": {"scan_calls", "keys_examined", "started_ms", "completed_ms",
  //            "in_progress": {...}}}
  [[nodiscard]] nlohmann::json effects_json() const;

  // The job types with a breaker hash, and with a fleet histogram.
  [[nodiscard]] std::set<std::string> breaker_job_types() const;
  [[nodiscard]] std::set<std::string> histogram_job_types() const;

  // The open retry windows: stats.open_total, open_by_type and windows.
  void add_windows(RetryStats& stats) const;

 private:
  struct Tally {
    std::map<std::string, std::map<std::string, std::uint64_t>> by_type{};
    std::uint64_t records = 0;
    std::vector<EffectRow> orphans{};  // in progress, lease expired: oldest first
    std::vector<EffectRow> failed{};   // newest first
    std::optional<EffectRow> oldest_in_progress{};
    std::set<std::string> breakers{};
    std::set<std::string> histograms{};
    std::uint64_t windows_open = 0;
    std::map<std::string, std::uint64_t> windows_by_type{};
    std::vector<WindowRow> windows{};  // longest open first
    std::uint64_t scan_calls = 0;
    std::uint64_t keys_examined = 0;
    std::chrono::system_clock::time_point started{};
  };
  void count_effects(redis::Client& client, const std::vector<std::string>& keys,
                     const std::string& prefix);
  void count_windows(redis::Client& client, const std::vector<std::string>& keys,
                     const std::string& prefix);
  void keep(EffectRow row);
  [[nodiscard]] const Tally& shown() const { return complete_ ? *complete_ : current_; }

  const std::size_t rows_kept_;
  std::unique_ptr<ResumableScan> scan_{};
  Tally current_{};
  std::optional<Tally> complete_{};
  std::chrono::system_clock::time_point completed_at_{};
  std::uint64_t sweeps_ = 0;
};

struct FleetViewOptions {
  std::string redacted_url{};
  // The breakers' rules as the applications configure them (threshold and
  // window: the store does not keep them).
  breaker::BreakerRules rules{};
  // Keys asked of SCAN per refresh at most (FleetCensus::advance).
  std::size_t scan_budget = 10'000;
  // How often the runtime checks run (they sample latency: not every refresh).
  std::chrono::milliseconds checks_every = std::chrono::seconds(30);
  // Breaker transitions seen between refreshes, kept.
  std::size_t transitions_kept = 50;
  // The newest entries of the fleet's alert history (RedisAlertStream) shown.
  std::size_t alerts_shown = 30;
};

class FleetView {
 public:
  FleetView(std::shared_ptr<redis::Client> client, FleetViewOptions options);

  // The document for now (see above). Never throws.
  [[nodiscard]] nlohmann::json refresh();

 private:
  nlohmann::json read_fleet();
  void note_transitions(const nlohmann::json& breakers, std::int64_t now_ms);

  std::shared_ptr<redis::Client> client_;
  const FleetViewOptions options_;
  FleetCensus census_{};
  std::map<std::string, std::string> last_states_{};  // job type -> state
  std::deque<nlohmann::json> transitions_{};          // newest first
  bool noted_ = false;                                // a first refresh has been read
  std::vector<runtime_checks::CheckResult> checks_{};
  std::string checks_error_{};  // why the last run failed, if it did
  std::chrono::steady_clock::time_point checks_at_{};
  bool checked_ = false;
};

}  // namespace prodsafe::cli
