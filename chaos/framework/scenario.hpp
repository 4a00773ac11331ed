// The chaos suite's framework, in the manner of Jepsen: a scenario starts
// real worker processes (chaos/worker/worker.hpp) against a real Redis,
// injects real faults (kill and pause Redis or the workers, reset connections
// through a FaultProxy), then reads the history the workers left (their
// fsynced ledgers and stats) and checks invariants over it.
//
// A scenario lives in its own folder, chaos/scenarios/<name>/, as
// <name>.cpp that registers itself, with any helpers of its own beside it:
//
//   namespace prodsafe::chaos {
//   namespace {
//   void run(ScenarioContext& context) {
//     Trial trial = context.trial("main");
//     context.start_redis({"appendonly yes", "appendfsync always"});  // embedded only
//     WorkerSpec spec = context.worker_spec(trial, "w1");
//     spec.op_count = context.quick() ? 100 : 1000;
//     WorkerProcess& worker = context.spawn(spec);
//     ... inject faults, context.progress(...) ...
//     context.wait_for_workers({&worker}, std::chrono::seconds(60));
//     const CheckReport report = check_exactly_once(expected, context.read_ledgers(trial));
//     context.add(report, trial);
//     context.check("no worker hung", hung);  // held when `hung` is empty
//     context.measure("p99 latency", ...);
//   }
//   const bool registered = register_scenario({"my_scenario", "one-line summary", run});
//   }  // namespace
//   }  // namespace prodsafe::chaos
//
// Every .cpp under chaos/scenarios/ is linked whole into the CLI (an OBJECT
// library), so the registration runs; ctest registers one test per name that
// `prodsafe chaos --list` prints (`prodsafe chaos --quick --scenario <name>`,
// see tests/chaos/scenario_tests.cmake).
//
// Building blocks: chaos/worker/worker.hpp (WorkerSpec: what a worker
// process requests, how long its effect takes, its timeouts),
// chaos/framework/worker_process.hpp (kill, pause, resume, wait, probe,
// stats, events), chaos/worker/probe.hpp (strike while a worker is
// mid-effect), chaos/framework/order_workers.hpp (a partitioned fleet of
// order-placing workers), chaos/history/checker.hpp (exactly once over the
// ledgers), chaos/history/fencing.hpp (duplicates allowed only as fenced
// recoveries of faulted workers) and chaos/history/worker_checks.hpp (what
// the workers reported).
//
// Rows (chaos/history/invariant.hpp): an invariant holds or is VIOLATED (any
// violation fails the run); a measurement is evidence (e.g. duplicates under
// appendfsync everysec) shown as "measured" and never fails the run. A
// scenario that cannot run here (e.g. needs to kill Redis but was given an
// external --redis) calls skip().
//
// Thread safety: a ScenarioContext is driven by the one thread that runs the
// scenario (its workers and embedded Redis die with that thread).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chaos/framework/fault_proxy.hpp"
#include "chaos/framework/worker_process.hpp"
#include "chaos/history/checker.hpp"
#include "chaos/history/invariant.hpp"
#include "chaos/history/ledger.hpp"
#include "chaos/history/worker_checks.hpp"
#include "chaos/worker/worker.hpp"
#include "prodsafe/redis/options.hpp"

namespace prodsafe::embedded {
class RedisServer;
struct TestCertificates;
}  // namespace prodsafe::embedded
namespace prodsafe::redis {
class Client;
}

namespace prodsafe::chaos {

struct ScenarioOptions {
  // The Redis to test. Empty (the default): each scenario starts its own
  // embedded redis-server. Given: that server, touching only keys under this
  // run's unique prefixes (deleted afterwards); scenarios that must kill or
  // pause Redis are then skipped.
  std::string redis_url{};
  // TLS settings for redis_url (its CA, client certificate, SNI); every
  // client and worker of the run uses them. Default: none (TLS only when
  // redis_url is rediss://, verified against the system's CAs).
  redis::TlsOptions redis_tls{};
  // The embedded servers listen on TLS only: each scenario makes a CA and a
  // server certificate (embedded::make_test_certificates) in
  // <its directory>/certificates, and every client of the run (the
  // scenario's, the workers', the checks') connects with rediss:// trusting
  // that CA. Requires the embedded servers: run_scenarios throws
  // InvalidArgument when redis_url is set too. Default: false, plain TCP.
  bool embedded_tls = false;
  // Small sizes, for ctest (a few seconds to tens of seconds per scenario).
  // Default: false, the full sizes of `make chaos`.
  bool quick = false;
  // Where scenarios keep their files (<work_dir>/<scenario>/...). Empty (the
  // default): a fresh temporary directory, removed when every scenario
  // passed and kept (its path printed) otherwise. A given one is kept.
  std::filesystem::path work_dir{};
  // Show a single updating progress line (only sensible on a terminal).
  // Default: false.
  bool progress = false;
  // Test-only: workers skip the claim (WorkerSpec::break_guard), to prove the
  // invariants can fail. Default: false.
  bool break_guard = false;
  // Seeds every random choice (a scenario's own seed derives from it and its
  // name). 0 (the default): a random seed, printed.
  std::uint64_t seed = 0;
  // Also write the JSON report of all scenarios here. Default: empty, none.
  std::filesystem::path json_output{};
  // The binary started as `<worker_executable> chaos-worker --spec FILE`.
  // Default: empty, the running executable (/proc/self/exe).
  std::filesystem::path worker_executable{};
};

struct ScenarioResult {
  std::string name{};
  std::string summary{};
  // The run's seed (ScenarioOptions::seed, resolved): `--seed` reproduces it.
  std::uint64_t seed = 0;
  // Non-empty: the scenario did not run, and why.
  std::string skipped{};
  // Non-empty: the scenario stopped with this error (a failure).
  std::string error{};
  std::vector<Invariant> invariants{};
  std::vector<Measurement> measurements{};
  // Scenario-specific facts (sizes, fault counts, timings) for the JSON.
  nlohmann::json details = nlohmann::json::object();
  double seconds = 0;
  std::filesystem::path work_dir{};

  // No invariant violated and no error (a skipped scenario is ok).
  [[nodiscard]] bool ok() const noexcept;
  // A title line, then one aligned row per invariant and measurement:
  //   INVARIANT                      STATUS    COUNT  DETAIL
  //   always: no op executed twice   held          0
  //   off: ops executed twice        measured     37  order-3 x2 (tokens 1, 1; ...)
  [[nodiscard]] std::string table() const;
  [[nodiscard]] nlohmann::json to_json() const;
};

// One run inside a scenario, with its own ledgers, journal, worker files and
// key prefix (kill_redis runs one trial per persistence mode).
struct Trial {
  std::string tag{};
  std::filesystem::path directory{};  // <scenario dir>/<tag>
  std::filesystem::path ledgers{};    // <directory>/ledgers: only ledger files
  std::filesystem::path journal{};    // <directory>/journal: the workers' shared journal
  std::filesystem::path workers{};    // <directory>/workers: specs, probes, stats, logs
  std::string key_prefix{};           // unique to this run of the scenario

  // "<tag>: <name>", the name of a row about this trial.
  [[nodiscard]] std::string row(std::string_view name) const;
};

class ScenarioContext;
using ScenarioFunction = std::function<void(ScenarioContext&)>;

struct ScenarioInfo {
  std::string name{};
  std::string summary{};
  ScenarioFunction run{};
};

// Adds a scenario to the registry (call from a static initializer); returns
// true so that it can initialize a namespace-scope constant. Throws
// InvalidArgument when the name is taken.
bool register_scenario(ScenarioInfo info);
// Every registered scenario, by name.
[[nodiscard]] std::vector<ScenarioInfo> registered_scenarios();
// The scenario named `name`, or null.
[[nodiscard]] const ScenarioInfo* find_scenario(std::string_view name);

class ScenarioContext {
 public:
  ScenarioContext(const ScenarioOptions& options, const ScenarioInfo& info,
                  std::filesystem::path directory, std::uint64_t seed, std::ostream& out);
  // Kills every worker still running, stops the proxy and the embedded Redis,
  // and deletes this run's keys from an external Redis.
  ~ScenarioContext();
  ScenarioContext(const ScenarioContext&) = delete;
  ScenarioContext& operator=(const ScenarioContext&) = delete;

  [[nodiscard]] const ScenarioOptions& options() const noexcept { return options_; }
  [[nodiscard]] bool quick() const noexcept { return options_.quick; }
  [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }
  [[nodiscard]] std::mt19937_64& random() noexcept { return random_; }
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return directory_; }
  [[nodiscard]] ScenarioResult& result() noexcept { return result_; }

  // --- The Redis under test ---
  // True when this run starts its own redis-server (no --redis given).
  [[nodiscard]] bool embedded() const noexcept { return options_.redis_url.empty(); }
  // Starts a fresh embedded redis-server with these redis.conf lines,
  // replacing the previous one; TLS only with ScenarioOptions::embedded_tls.
  // Throws InvalidArgument with an external Redis.
  embedded::RedisServer& start_redis(std::vector<std::string> config = {});
  // The embedded server, or null.
  [[nodiscard]] embedded::RedisServer* redis_server() noexcept { return server_.get(); }
  // The URL of the Redis under test (embedded or external), without a proxy.
  [[nodiscard]] std::string redis_url() const;
  // A FaultProxy in front of the Redis under test (replacing the previous
  // one). Throws InvalidArgument for a unix:// Redis.
  FaultProxy& start_proxy();
  void stop_proxy();
  // The Redis under test reached through the proxy (credentials, database
  // and rediss:// scheme of redis_url() kept): give this to workers whose
  // connections the scenario wants to break. Requires start_proxy().
  [[nodiscard]] std::string proxied_url() const;
  // The TLS settings for a client of `url` (redis_url() or proxied_url()):
  // ScenarioOptions::redis_tls (with embedded_tls: trust the embedded
  // server's CA), with the SNI set to redis_url()'s host for a
  // TLS connection through the proxy, so the certificate is checked against
  // the server's name rather than the proxy's address. Embedded without a
  // redis-server started (a scenario running its own Sentinel or Cluster
  // topology): ScenarioOptions::redis_tls as is.
  [[nodiscard]] redis::TlsOptions tls_for(const std::string& url) const;
  // A client of redis_url() for the scenario's own reads (e.g. inspecting
  // effect records), with the trial's key prefix, short timeouts and
  // tls_for(redis_url()).
  [[nodiscard]] std::shared_ptr<redis::Client> client(const Trial& trial) const;

  // --- Trials and workers ---
  // Creates <directory>/<tag>/{ledgers,journal,workers} and a fresh key prefix.
  Trial trial(const std::string& tag);
  // A spec with everything but the ops filled in: name, the Redis under test
  // (or `redis_url`), the trial's prefix and directories, a seed from
  // random(), and break_guard from the options.
  [[nodiscard]] WorkerSpec worker_spec(const Trial& trial, const std::string& name,
                                       const std::string& redis_url = {});
  // Starts a worker process; the context owns it until the scenario ends.
  WorkerProcess& spawn(const WorkerSpec& spec);
  // Waits until every worker has ended, calling `tick` (if any) every 10 ms
  // (faults are injected from there). On timeout kills the rest as hung
  // (check_workers_exited reports them) and returns their names.
  std::vector<std::string> wait_for_workers(std::span<WorkerProcess* const> workers,
                                            std::chrono::milliseconds timeout,
                                            const std::function<void()>& tick = {});
  std::vector<std::string> wait_for_workers(std::initializer_list<WorkerProcess*> workers,
                                            std::chrono::milliseconds timeout);
  // Every worker this context started for `trial`, in start order.
  [[nodiscard]] std::vector<WorkerProcess*> workers_of(const Trial& trial) const;
  // Requests done and planned over `workers`, from their probes.
  [[nodiscard]] std::pair<std::uint64_t, std::uint64_t> progress_of(
      std::span<WorkerProcess* const> workers) const;

  // --- History ---
  [[nodiscard]] LedgerContents read_ledgers(const Trial& trial) const;
  // The stats of those workers that wrote them (killed workers did not).
  [[nodiscard]] static std::vector<WorkerStats> read_stats(std::span<WorkerProcess* const> workers);

  // --- Rows and output ---
  void add(Invariant invariant);
  // held_unless(name, ...) (chaos/history/invariant.hpp): held when nothing
  // violates it.
  void check(std::string name, std::size_t violations, std::string detail = {});
  void check(std::string name, std::span<const std::string> violations,
             std::size_t shown = kDetailItems);
  // Every invariant of a checker report, named "<tag>: <invariant>".
  void add(const CheckReport& report, const Trial& trial);
  void measure(std::string name, std::size_t count, std::string detail = {});
  // Marks the scenario skipped (the caller then returns).
  void skip(std::string reason);
  // A line for people (clears the progress line first).
  void note(std::string_view line);
  // Replaces the progress line (only when options().progress).
  void progress(std::string_view line);

 private:
  void clear_progress();
  void delete_keys() noexcept;

  const ScenarioOptions& options_;
  std::filesystem::path directory_;
  std::uint64_t seed_;
  std::mt19937_64 random_;
  std::ostream& out_;
  std::filesystem::path executable_;
  std::string run_id_;
  ScenarioResult result_;
  // With embedded_tls: the certificates the servers of this scenario use,
  // made by the first start_redis().
  std::unique_ptr<embedded::TestCertificates> certificates_;
  std::unique_ptr<embedded::RedisServer> server_;
  std::unique_ptr<FaultProxy> proxy_;
  std::vector<std::unique_ptr<WorkerProcess>> workers_;
  std::vector<std::string> key_prefixes_;
  bool progress_shown_ = false;
  std::string progress_text_;
  std::chrono::steady_clock::time_point progress_written_{};
};

// --- Reporting ---

// A trial's details for the JSON: `own` (the scenario's facts) and what every
// trial of worker processes reports: max_call_latency_us (of `total`),
// hung_workers, seconds and check (the checker's report).
[[nodiscard]] nlohmann::json trial_details(const WorkerStats& total,
                                           const std::vector<std::string>& hung, double seconds,
                                           const CheckReport& report, nlohmann::json own);

// --- Running ---

// How long an external Redis (ScenarioOptions::redis_url) gets to answer
// PING before a run, and before each scenario, gives up on it.
inline constexpr std::chrono::seconds kRedisAnswerWithin{5};

// PINGs `url` until it answers, retrying connection failures and timeouts for
// up to `within`. Throws StoreUnavailable naming the URL (password redacted)
// and the last error when it stays unreachable, or at once when it refuses
// (AUTH, ACL); InvalidArgument for a malformed URL.
void wait_until_redis_answers(const std::string& url,
                              std::chrono::milliseconds within = kRedisAnswerWithin,
                              const redis::TlsOptions& tls = {});

// Runs the named scenarios (all when `names` is empty) in registry order,
// printing progress and each table to `out`; handles the work directory and
// the seed (see ScenarioOptions) and writes options.json_output. Throws
// InvalidArgument for an unknown name, IoError when the work directory cannot
// be made or the JSON report cannot be written, and StoreUnavailable when an
// external Redis does not answer (wait_until_redis_answers) before the first
// scenario;
// a scenario whose Redis stops answering before it starts fails with that
// error without running.
std::vector<ScenarioResult> run_scenarios(const ScenarioOptions& options,
                                          std::span<const std::string> names, std::ostream& out);
// The JSON report of a run: {"ok", "seed", "scenarios": [...]}.
[[nodiscard]] nlohmann::json report_json(std::span<const ScenarioResult> results,
                                         std::uint64_t seed);

}  // namespace prodsafe::chaos
