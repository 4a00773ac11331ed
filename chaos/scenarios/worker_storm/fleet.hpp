// The simulated fleet of the worker_storm scenario: P processes inside this
// one, each with its own redis::Client, a CircuitBreaker per job type on a
// RedisBreakerStore, a RetrySpikeDetector per job type, a
// RetryAnomalyDetector, a RetryWindowTracker and a metrics::Registry, and a
// few job threads per job type. Processes share state ONLY through Redis (the
// breaker hashes and their pub/sub channels, the retry windows), exactly as
// separate processes would. Every alert goes through alerts::AlertHooks into
// a History with timestamps.
//
// Job types: "ledger" calls the ledger service; "payments" posts each payment
// to the ledger service through the ledger's breaker, so it depends on it;
// "notifications" calls a mailer and depends on nothing. The services are
// Dependency objects whose health the scenario switches.
//
// Breakers: 50 failures in a 2 s window open them for 250 ms, doubling per
// consecutive trip up to 1 s; retries: 5 attempts, 10-100 ms backoff; spikes:
// a 1 s window in 10 slots, 3x the baseline and at least 5 retries.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "prodsafe/alerts/alert_hooks.hpp"
#include "prodsafe/breaker/circuit_breaker.hpp"
#include "prodsafe/breaker/redis_breaker_store.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/connection.hpp"
#include "prodsafe/retry/anomaly_detector.hpp"
#include "prodsafe/retry/retry_window_tracker.hpp"
#include "prodsafe/retry/spike_detector.hpp"

namespace prodsafe::chaos::storm {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

enum JobType : std::size_t { kLedger = 0, kPayments = 1, kNotifications = 2 };
inline constexpr std::array<std::string_view, 3> kJobTypes = {"ledger", "payments",
                                                              "notifications"};

enum Phase : int { kBaseline = 0, kStorm = 1, kRecovery = 2 };
inline constexpr std::array<std::string_view, 3> kPhases = {"baseline", "storm", "recovery"};

// The events of the spike and anomaly alerts (breakers fire alerts::kCircuit*).
inline constexpr std::string_view kRetrySpike = "retry_spike";
inline constexpr std::string_view kRetryAnomaly = "retry_anomaly";

// The fleet's configuration, the same in every process.
inline constexpr std::uint64_t kThreshold = 50;
inline constexpr milliseconds kBreakerWindow{2000};
inline constexpr int kBreakerBuckets = 10;
inline constexpr milliseconds kBreak{250};
inline constexpr milliseconds kMaxBreak{1000};
inline constexpr milliseconds kMaxHalfOpenWait{1000};
inline constexpr milliseconds kSpikeWindow{1000};
inline constexpr int kSpikeSlots = 10;
inline constexpr milliseconds kJobInterval{25};
inline constexpr int kMaxAttempts = 5;

struct Sizes {
  // Simulated processes. Default: 2.
  std::size_t processes = 2;
  // Job threads per job type in each process. Default: 2.
  std::size_t threads_per_type = 2;
  // How long the baseline and the storm last. Defaults: 3 s, 3 s.
  milliseconds baseline{3000};
  milliseconds storm{3000};
  // The spike detectors' baseline, in windows. Default: 2.
  int spike_baseline_windows = 2;
};

// The steady clock in ns, and ns in ms.
[[nodiscard]] std::int64_t now_ns();
[[nodiscard]] inline std::int64_t ms(std::int64_t ns) { return ns / 1'000'000; }
[[nodiscard]] inline std::int64_t ms_to_ns(milliseconds duration) {
  return duration.count() * 1'000'000;
}

[[nodiscard]] breaker::CircuitBreakerOptions breaker_options();
// The state of a job type's breaker in the store ("unreadable (...)" on error).
[[nodiscard]] std::string read_state(breaker::RedisBreakerStore& store, std::size_t type);

// A simulated downstream service whose health the scenario switches.
// Thread safety: safe for concurrent use.
class Dependency {
 public:
  Dependency(std::string name, std::uint64_t seed) : name_(std::move(name)), random_(seed) {}

  // Fails 1 call in `every` (0: none), evenly spaced; or a `rate` share at random.
  void set_noise(std::uint64_t every);
  void set_failure_rate(double rate);
  // Takes 1 ms; throws std::runtime_error when it fails.
  void call();

 private:
  const std::string name_;
  // Guards random_, calls_, every_ and rate_.
  std::mutex mutex_;
  std::mt19937_64 random_;   // guarded by mutex_
  std::uint64_t calls_ = 0;  // guarded by mutex_
  std::uint64_t every_ = 0;  // guarded by mutex_
  double rate_ = 0;          // guarded by mutex_
};

struct AlertRecord {
  std::int64_t at_ns = 0;
  std::string event{};
  std::string job_type{};
  std::string state{};  // a breaker's new state, an anomaly's type
  std::string previous{};
  std::uint64_t failures = 0;
  // When the record_failure() call that fired it began (0: not fired by one).
  std::int64_t record_started_ns = 0;
  std::string message{};
};

struct FailureRecord {
  std::size_t type = 0;
  std::int64_t ended_ns = 0;  // when record_failure() returned
};

struct JobCounts {
  std::atomic<std::uint64_t> run{0};
  std::atomic<std::uint64_t> succeeded{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> refused{0};  // the breaker refused the first attempt
};

// What the operator sees, and what the fleet did. Safe for concurrent use.
class History {
 public:
  void alert(AlertRecord record);
  void failure_recorded(FailureRecord record);
  void error(std::string text);
  // Sorted by time.
  [[nodiscard]] std::vector<AlertRecord> alerts() const;
  [[nodiscard]] std::vector<FailureRecord> failures() const;
  [[nodiscard]] std::vector<std::string> errors() const;
  // Jobs run and refused so far, over every phase and job type.
  [[nodiscard]] std::pair<std::uint64_t, std::uint64_t> jobs_run_and_refused() const;

  std::atomic<int> phase{kBaseline};
  std::array<std::array<JobCounts, 3>, 3> jobs{};  // [phase][job type]

 private:
  // Guards alerts_, failures_ and errors_ (phase and jobs are atomics).
  mutable std::mutex mutex_;
  std::vector<AlertRecord> alerts_;      // guarded by mutex_
  std::vector<FailureRecord> failures_;  // guarded by mutex_
  std::vector<std::string> errors_;      // guarded by mutex_
};

// One simulated worker process of the fleet: its job threads run from
// construction until stop().
class FleetProcess {
 public:
  FleetProcess(std::size_t index, const std::string& url, const redis::TlsOptions& tls,
               const std::string& key_prefix, const Sizes& sizes, History& history,
               Dependency& ledger, Dependency& mailer, std::uint64_t seed);
  ~FleetProcess() { stop(); }
  FleetProcess(const FleetProcess&) = delete;
  FleetProcess& operator=(const FleetProcess&) = delete;

  void stop();
  [[nodiscard]] const metrics::Registry& registry() const { return registry_; }

 private:
  void job_loop(std::size_t type, std::size_t thread, std::uint64_t seed);
  void run_job(std::size_t type, const std::string& job_id, std::uint64_t seed);
  void attempt(std::size_t type);
  void post_to_ledger();
  void record_failure(std::size_t type);

  const std::size_t index_;
  History& history_;
  Dependency& ledger_;
  Dependency& mailer_;
  metrics::Registry registry_;  // before everything that records into it
  std::shared_ptr<redis::Client> client_;
  std::shared_ptr<alerts::AlertHooks> hooks_;
  retry::RetryAnomalyDetector anomalies_;
  retry::RetryWindowTracker tracker_;
  std::array<std::unique_ptr<breaker::CircuitBreaker>, 3> breakers_;
  std::array<std::unique_ptr<retry::RetrySpikeDetector>, 3> spikes_;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
};

// Every transition the breaker store publishes, counted per (job type, state):
// the fleet-wide truth the alerts are compared with.
class TransitionFeed {
 public:
  explicit TransitionFeed(const std::shared_ptr<redis::Client>& client);
  ~TransitionFeed() { stop(); }
  TransitionFeed(const TransitionFeed&) = delete;
  TransitionFeed& operator=(const TransitionFeed&) = delete;

  // Reads until the channels have been quiet for 200 ms, then stops.
  void stop();
  [[nodiscard]] std::map<std::pair<std::string, std::string>, std::size_t> counts() const;
  [[nodiscard]] std::string error() const;

 private:
  void loop();

  redis::Connection connection_;                       // used by thread_ alone once it runs
  std::map<std::string, std::string> job_of_channel_;  // written before thread_ starts
  // Guards counts_ and error_, written by thread_ and read by counts() and error().
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, std::size_t> counts_;  // guarded by mutex_
  std::string error_;                                                  // guarded by mutex_
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// A counter's series: label values -> value.
using CounterSeries = std::map<std::vector<std::string>, double>;

// A counter family summed over the fleet's registries, by label values.
[[nodiscard]] CounterSeries fleet_counter(const std::vector<std::unique_ptr<FleetProcess>>& fleet,
                                          std::string_view name);

}  // namespace prodsafe::chaos::storm
