// What `prodsafe dashboard` shows, read from Redis: one JSON document per
// refresh (docs/operations.md, "The dashboard", lists its fields).
//
// FleetView::refresh() reads the breakers and retry histograms it knows of,
// advances the bounded SCAN walks that find breakers and histograms
// (NameSweep) and count the open retry windows (WindowCensus) and the effect
// records (EffectCensus), and, every `checks_every`, runs the runtime checks:
// however many keys Redis holds, a refresh costs it a bounded amount of work. It never throws: when
// Redis cannot be read the document says so ("redis": {"reachable": false, "error": ...}) and
// carries none of the fleet's data, so a page never shows stale values as
// current. A section that fails for a reason of its own (a key of the wrong
// type, a command the user may not run) is {"error": ...}; the others stay.
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
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "effect_records.hpp"
#include "ops_common.hpp"
#include "prodsafe/breaker/breaker_store.hpp"
#include "retry_stats.hpp"

namespace prodsafe::redis {
class Client;
}

namespace prodsafe::cli {

// Counts the effect records (effect:<TYPE>:<id>) with SCAN, a bounded number
// of keys per advance() so that a refresh never costs Redis more than that,
// however many records there are. A sweep over every key takes as many
// advances as it needs; the figures shown are the last complete sweep's (and
// the sweep in progress until the first completes). Counts are by type and
// state; SCAN may return a key twice while Redis rehashes, so a count can be
// one or two high.
class EffectCensus {
 public:
  // `rows_kept`: the oldest in-progress records past their lease and the most
  // recent failed records kept for the page (each list at most this long).
  explicit EffectCensus(std::size_t rows_kept = 20) : rows_kept_(rows_kept) {}

  // Walks on: SCAN calls of COUNT 500 until about `budget` keys have been
  // examined or the sweep ends, then reads the records found in pipelines.
  // Throws what the client throws (the walk resumes where it stopped).
  void advance(redis::Client& client, std::size_t budget);

  // {"sweeps_completed", "records", "by_type": {type: {state: n}},
  //  "orphans": [...], "failed": [...], "oldest_in_progress": row or null,
  //  "sweep": {"complete", "scan_calls", "keys_examined", "started_ms", ...}}
  [[nodiscard]] nlohmann::json json() const;

 private:
  struct Tally {
    std::map<std::string, std::map<std::string, std::uint64_t>> by_type{};
    std::uint64_t records = 0;
    std::vector<EffectRow> orphans{};  // in progress, lease expired: oldest first
    std::vector<EffectRow> failed{};
    std::optional<EffectRow> oldest_in_progress{};
    std::uint64_t scan_calls = 0;
    std::uint64_t keys_examined = 0;
    std::chrono::system_clock::time_point started{};
  };
  void count(EffectRow row);

  const std::size_t rows_kept_;
  std::unique_ptr<ResumableScan> scan_{};
  Tally current_{};
  std::optional<Tally> complete_{};
  std::chrono::system_clock::time_point completed_at_{};
  std::uint64_t sweeps_ = 0;
};

// The names under one key prefix (circuit:<job_type>,
// retry:histogram:<job_type>), found by a SCAN walk spread over calls as
// EffectCensus's is: names() is the last complete walk's names plus those
// the current walk has found, so a new name shows once the walk reaches it
// and one whose key is gone leaves when a walk completes without it.
class NameSweep {
 public:
  // `prefix` under the client's key prefix ("circuit:"); names `accept`
  // refuses are left out.
  NameSweep(std::string prefix, bool (*accept)(std::string_view name))
      : prefix_(std::move(prefix)), accept_(accept) {}

  // As EffectCensus::advance.
  void advance(redis::Client& client, std::size_t budget);
  [[nodiscard]] std::set<std::string> names() const;

 private:
  const std::string prefix_;
  bool (*const accept_)(std::string_view);
  std::unique_ptr<ResumableScan> scan_{};
  std::set<std::string> current_{};
  std::set<std::string> complete_{};
};

// The open retry windows (retry:window:<job_id>) counted by a SCAN walk
// spread over calls as EffectCensus's: the figures are the last complete
// walk's (the current walk's until the first completes), each window's ages
// as they were when the walk read it.
class WindowCensus {
 public:
  // `shown`: the longest-open windows kept.
  explicit WindowCensus(std::size_t shown) : shown_(shown) {}

  // As EffectCensus::advance.
  void advance(redis::Client& client, std::size_t budget);
  // open_total, open_by_type and windows (histograms left empty).
  [[nodiscard]] RetryStats stats() const;
  [[nodiscard]] bool complete() const noexcept { return complete_.has_value(); }

 private:
  void keep_longest(std::vector<WindowRow>& windows) const;

  const std::size_t shown_;
  std::unique_ptr<ResumableScan> scan_{};
  RetryStats current_{};
  std::optional<RetryStats> complete_{};
};

struct FleetViewOptions {
  std::string redacted_url{};
  // The breakers' rules as the applications configure them (threshold and
  // window: the store does not keep them).
  breaker::BreakerRules rules{};
  // Keys each SCAN walk examines per refresh, about (effect records,
  // breakers, retry histograms and windows: four walks; each advance()).
  std::size_t scan_budget = 20'000;
  // How often the runtime checks run (they sample latency: not every refresh).
  std::chrono::milliseconds checks_every = std::chrono::seconds(30);
  // Open retry windows shown (the longest open).
  std::size_t windows_shown = 20;
  // Breaker transitions seen between refreshes, kept.
  std::size_t transitions_kept = 50;
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
  EffectCensus census_{};
  NameSweep breakers_;
  NameSweep histograms_;
  WindowCensus windows_;
  std::map<std::string, std::string> last_states_{};  // job type -> state
  std::deque<nlohmann::json> transitions_{};          // newest first
  bool noted_ = false;                                // a first refresh has been read
  nlohmann::json checks_{};                           // the last run's results, or {"error": ...}
  std::chrono::steady_clock::time_point checks_at_{};
  bool checked_ = false;
};

}  // namespace prodsafe::cli
