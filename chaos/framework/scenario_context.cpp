// ScenarioContext: what a scenario uses to start Redis, proxies and workers,
// to read the history and to report rows.
#include <unistd.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <thread>

#include <fmt/format.h>

#include "chaos/framework/scenario.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/embedded/test_certificates.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/endpoint.hpp"

namespace prodsafe::chaos {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr std::size_t kProgressWidth = 110;

std::string percent_encoded(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", byte);
    }
  }
  return out;
}

}  // namespace

ScenarioContext::ScenarioContext(const ScenarioOptions& options, const ScenarioInfo& info,
                                 fs::path directory, std::uint64_t seed, std::ostream& out)
    : options_(options),
      directory_(std::move(directory)),
      seed_(seed),
      random_(seed),
      out_(out),
      executable_(options.worker_executable.empty() ? current_executable()
                                                    : options.worker_executable),
      run_id_(fmt::format("{:x}-{:x}", ::getpid(), seed & 0xffffffffU)) {
  result_.name = info.name;
  result_.summary = info.summary;
  result_.seed = seed;
  result_.work_dir = directory_;
}

ScenarioContext::~ScenarioContext() {
  clear_progress();
  workers_.clear();  // each kills its process if it still runs
  proxy_.reset();
  server_.reset();
  delete_keys();
}

embedded::RedisServer& ScenarioContext::start_redis(std::vector<std::string> config) {
  if (!embedded()) {
    throw InvalidArgument(
        fmt::format("scenario {}: start_redis() needs the embedded server", result_.name));
  }
  proxy_.reset();
  server_.reset();
  embedded::RedisServerOptions server_options{.config = std::move(config)};
  if (options_.embedded_tls) {
    if (!certificates_) {
      certificates_ = std::make_unique<embedded::TestCertificates>(
          embedded::make_test_certificates(directory_ / "certificates"));
    }
    server_options.tls = embedded::RedisServerTls{.cert_file = certificates_->server_cert,
                                                  .key_file = certificates_->server_key,
                                                  .tls_only = true};
  }
  server_ = std::make_unique<embedded::RedisServer>(std::move(server_options));
  return *server_;
}

std::string ScenarioContext::redis_url() const {
  if (!embedded()) return options_.redis_url;
  if (!server_) {
    throw InvalidArgument(
        fmt::format("scenario {}: call start_redis() before using Redis", result_.name));
  }
  return server_->url();
}

FaultProxy& ScenarioContext::start_proxy() {
  const redis::Endpoint endpoint = redis::parse_url(redis_url());
  if (endpoint.transport != redis::Endpoint::Transport::kTcp) {
    throw InvalidArgument(fmt::format("scenario {}: a FaultProxy needs a TCP Redis, not {}",
                                      result_.name, endpoint.redacted()));
  }
  proxy_.reset();
  proxy_ = std::make_unique<FaultProxy>(
      FaultProxyOptions{.upstream_host = endpoint.host, .upstream_port = endpoint.port});
  return *proxy_;
}

void ScenarioContext::stop_proxy() { proxy_.reset(); }

std::string ScenarioContext::proxied_url() const {
  if (!proxy_) throw InvalidArgument("proxied_url(): call start_proxy() first");
  const redis::Endpoint endpoint = redis::parse_url(redis_url());
  std::string credentials;
  if (!endpoint.password.empty()) {
    credentials =
        fmt::format("{}:{}@", percent_encoded(endpoint.user), percent_encoded(endpoint.password));
  }
  std::string url = fmt::format("{}://{}127.0.0.1:{}", endpoint.tls ? "rediss" : "redis",
                                credentials, proxy_->port());
  if (endpoint.db != 0) url += fmt::format("/{}", endpoint.db);
  return url;
}

redis::TlsOptions ScenarioContext::tls_for(const std::string& url) const {
  redis::TlsOptions tls = options_.redis_tls;
  if (certificates_) tls = redis::TlsOptions{.ca_file = certificates_->ca_cert.string()};
  // No embedded redis-server: `url` names a topology the scenario runs itself
  // (Sentinel, Cluster), reached directly.
  if (embedded() && !server_) return tls;
  const redis::Endpoint upstream = redis::parse_url(redis_url());
  const redis::Endpoint endpoint = redis::parse_url(url);
  const bool tls_on = endpoint.tls || tls.enabled;
  const bool proxied = endpoint.host != upstream.host || endpoint.port != upstream.port;
  // An IPv6 address cannot be a server name; its certificate check is the
  // transport's (by address).
  if (tls_on && proxied && tls.sni.empty() && upstream.host.find(':') == std::string::npos) {
    tls.sni = upstream.host;
  }
  return tls;
}

std::shared_ptr<redis::Client> ScenarioContext::client(const Trial& trial) const {
  return std::make_shared<redis::Client>(redis_url(),
                                         redis::Options{.connect_timeout = milliseconds(1000),
                                                        .command_timeout = milliseconds(2000),
                                                        .pool_size = 2,
                                                        .key_prefix = trial.key_prefix,
                                                        .tls = tls_for(redis_url())});
}

Trial ScenarioContext::trial(const std::string& tag) {
  Trial trial{.tag = tag, .directory = directory_ / (tag.empty() ? "main" : tag)};
  trial.ledgers = trial.directory / "ledgers";
  trial.journal = trial.directory / "journal";
  trial.workers = trial.directory / "workers";
  for (const fs::path& path : {trial.ledgers, trial.journal, trial.workers})
    fs::create_directories(path);
  trial.key_prefix =
      fmt::format("prodsafe:chaos:{}:{}:{}:", result_.name, tag.empty() ? "main" : tag, run_id_);
  key_prefixes_.push_back(trial.key_prefix);
  return trial;
}

WorkerSpec ScenarioContext::worker_spec(const Trial& trial, const std::string& name,
                                        const std::string& redis_url) {
  WorkerSpec spec;
  spec.name = name;
  spec.redis_url = redis_url.empty() ? this->redis_url() : redis_url;
  spec.tls = tls_for(spec.redis_url);
  spec.key_prefix = trial.key_prefix;
  spec.seed = random_();
  spec.journal_directory = trial.journal.string();
  spec.ledger_directory = trial.ledgers.string();
  spec.files_directory = trial.workers.string();
  spec.break_guard = options_.break_guard;
  return spec;
}

WorkerProcess& ScenarioContext::spawn(const WorkerSpec& spec) {
  workers_.push_back(std::make_unique<WorkerProcess>(spec, executable_));
  return *workers_.back();
}

std::vector<std::string> ScenarioContext::wait_for_workers(std::span<WorkerProcess* const> workers,
                                                           milliseconds timeout,
                                                           const std::function<void()>& tick) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const bool all_done = std::none_of(workers.begin(), workers.end(),
                                       [](WorkerProcess* worker) { return worker->running(); });
    if (all_done) return {};
    if (std::chrono::steady_clock::now() >= deadline) break;
    if (tick) tick();
    std::this_thread::sleep_for(milliseconds(10));
  }
  std::vector<std::string> hung;
  for (WorkerProcess* worker : workers) {
    if (!worker->running()) continue;
    hung.push_back(worker->name());
    note(fmt::format("{}: worker {} (pid {}) still runs after {} ms; killing it. Its log:\n{}",
                     result_.name, worker->name(), worker->pid(), timeout.count(),
                     worker->log_tail()));
    worker->kill_hung();
  }
  return hung;
}

std::vector<std::string> ScenarioContext::wait_for_workers(
    std::initializer_list<WorkerProcess*> workers, milliseconds timeout) {
  return wait_for_workers(std::span<WorkerProcess* const>(workers.begin(), workers.size()),
                          timeout);
}

std::vector<WorkerProcess*> ScenarioContext::workers_of(const Trial& trial) const {
  std::vector<WorkerProcess*> found;
  for (const auto& worker : workers_) {
    if (worker->spec().ledger_directory == trial.ledgers.string()) found.push_back(worker.get());
  }
  return found;
}

std::pair<std::uint64_t, std::uint64_t> ScenarioContext::progress_of(
    std::span<WorkerProcess* const> workers) const {
  std::uint64_t done = 0;
  std::uint64_t total = 0;
  for (WorkerProcess* worker : workers) {
    const ProbeSnapshot probe = worker->probe();
    done += probe.requests_done;
    total += probe.requests_total;
  }
  return {done, total};
}

LedgerContents ScenarioContext::read_ledgers(const Trial& trial) const {
  return chaos::read_ledgers(trial.ledgers);
}

std::vector<WorkerStats> ScenarioContext::read_stats(std::span<WorkerProcess* const> workers) {
  std::vector<WorkerStats> stats;
  for (WorkerProcess* worker : workers) {
    if (auto found = worker->stats()) stats.push_back(std::move(*found));
  }
  return stats;
}

void ScenarioContext::add(Invariant invariant) {
  result_.invariants.push_back(std::move(invariant));
}

void ScenarioContext::check(std::string name, std::size_t violations, std::string detail) {
  add(held_unless(std::move(name), violations, std::move(detail)));
}

void ScenarioContext::check(std::string name, std::span<const std::string> violations,
                            std::size_t shown) {
  add(held_unless(std::move(name), violations, shown));
}

void ScenarioContext::add(const CheckReport& report, const Trial& trial) {
  for (Invariant row : report.invariants) {
    row.name = trial.row(row.name);
    add(std::move(row));
  }
}

void ScenarioContext::measure(std::string name, std::size_t count, std::string detail) {
  result_.measurements.push_back(Measurement{.name = std::move(name),
                                             .count = count,
                                             .detail = std::move(detail),
                                             .position = result_.invariants.size()});
}

void ScenarioContext::skip(std::string reason) { result_.skipped = std::move(reason); }

void ScenarioContext::clear_progress() {
  if (!progress_shown_) return;
  out_ << "\r\033[K" << std::flush;
  progress_shown_ = false;
  progress_text_.clear();
}

void ScenarioContext::note(std::string_view line) {
  clear_progress();
  out_ << line << "\n" << std::flush;
}

void ScenarioContext::progress(std::string_view line) {
  if (!options_.progress) return;
  // At most ten updates a second, and only when the text changed.
  const auto now = std::chrono::steady_clock::now();
  line = line.substr(0, kProgressWidth);
  if (line == progress_text_ || now - progress_written_ < milliseconds(100)) return;
  progress_text_ = line;
  progress_written_ = now;
  out_ << "\r\033[K" << line << std::flush;
  progress_shown_ = true;
}

void ScenarioContext::delete_keys() noexcept {
  if (embedded() || key_prefixes_.empty()) return;
  try {
    redis::Client redis(options_.redis_url,
                        redis::Options{.pool_size = 1, .tls = options_.redis_tls});
    for (const std::string& prefix : key_prefixes_) {
      std::string cursor = "0";
      do {
        const redis::Reply reply =
            redis.command({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
        cursor = reply.array().at(0).str();
        std::vector<std::string> del{"DEL"};
        for (const redis::Reply& key : reply.array().at(1).array()) del.push_back(key.str());
        if (del.size() > 1) redis.command(del);
      } while (cursor != "0");
    }
  } catch (const std::exception& error) {
    out_ << fmt::format("{}: could not delete this run's keys from {}: {}\n", result_.name,
                        redis::redact_url(options_.redis_url), error.what());
  }
}

}  // namespace prodsafe::chaos
