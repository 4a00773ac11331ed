// `prodsafe demo` until the chaos suite brings the full demo: every step here
// runs against a real Redis and prints what it measured.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "chaos/history/invariant.hpp"
#include "commands.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/embedded/test_certificates.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/info.hpp"
#include "prodsafe/redis/script.hpp"
#include "prodsafe/runtime_checks/redis_runtime_validator.hpp"
#include "sentinel_environment.hpp"

namespace prodsafe::cli {
namespace {

// A fresh directory under $TMPDIR (else /tmp), removed with its files when
// this object goes away.
class TemporaryDirectory {
 public:
  explicit TemporaryDirectory(const char* prefix) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = (std::filesystem::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") /
                           (std::string(prefix) + "-XXXXXX"))
                              .string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw IoError(
          fmt::format("cannot create a directory from {}: {} (set TMPDIR to a "
                      "writable directory)",
                      pattern, std::strerror(errno)));
    }
    path_ = pattern;
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

// Removes every key under the client's prefix (SCAN, never KEYS, then UNLINK)
// when the demo ends, however it ends: a Redis the user gave `demo --redis`
// is left as it was found.
class RemoveKeysAtExit {
 public:
  explicit RemoveKeysAtExit(redis::Client* client) : client_(client) {}
  RemoveKeysAtExit(const RemoveKeysAtExit&) = delete;
  RemoveKeysAtExit& operator=(const RemoveKeysAtExit&) = delete;
  ~RemoveKeysAtExit() {
    if (client_ == nullptr) return;
    try {
      const std::string pattern = client_->key("*");
      std::string cursor = "0";
      do {
        const redis::Reply page =
            client_->command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
        cursor = page.array().at(0).str();
        std::vector<std::string> unlink{"UNLINK"};
        for (const redis::Reply& key : page.array().at(1).array()) unlink.push_back(key.str());
        if (unlink.size() > 1) client_->command(unlink);
      } while (cursor != "0");
    } catch (const std::exception& error) {
      fmt::print(stderr, "prodsafe demo: could not remove its keys ({}*): {}\n", client_->key(""),
                 error.what());
    }
  }

 private:
  redis::Client* client_;
};

// The non-zero series of prodsafe's own order, breaker and retry counters,
// as name{label="value",...} value.
void print_metrics_excerpt() {
  metrics::default_registry().visit(
      {.counter = [](const metrics::Family<metrics::Counter>& family) {
        const bool wanted = family.name() == "prodsafe_idempotency_outcomes_total" ||
                            family.name() == "prodsafe_breaker_transitions_total" ||
                            family.name().starts_with("prodsafe_retry_");
        if (!wanted) return;
        family.for_each(
            [&](const std::vector<std::string>& values, const metrics::Counter& counter) {
              if (counter.value() == 0) return;
              std::vector<std::string> labels;
              for (std::size_t i = 0; i < values.size() && i < family.label_names().size(); ++i)
                labels.push_back(fmt::format("{}=\"{}\"", family.label_names()[i], values[i]));
              fmt::print("  {}{{{}}} {}\n", family.name(), fmt::join(labels, ","), counter.value());
            });
      }});
}

using Micros = std::chrono::duration<double, std::micro>;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::string info_field(const redis::Info& info, std::string_view name) {
  return info.get(name).value_or("?");
}

struct Latency {
  double p50_us = 0;
  double p99_us = 0;
};

Latency time_pings(redis::Client& client, int count) {
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const auto start = steady_clock::now();
    client.ping();
    samples.push_back(Micros(steady_clock::now() - start).count());
  }
  std::sort(samples.begin(), samples.end());
  return {samples[samples.size() / 2],
          samples[std::min(samples.size() - 1, samples.size() * 99 / 100)]};
}

void step(std::string_view title) { std::cout << "\n== " << title << "\n"; }

// INCR one counter from several threads through the pool; returns the final value.
long long concurrent_increments(redis::Client& client, const std::string& key, int threads,
                                int per_thread) {
  client.del(key);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) client.incr(key);
    });
  }
  for (auto& worker : workers) worker.join();
  return std::stoll(client.get(key).value_or("0"));
}

}  // namespace

int run_ping(const std::string& redis_url, const redis::TlsOptions& tls, int count) {
  redis::Client client(redis_url,
                       redis::Options{.tls = tls, .sentinel = sentinel_options_from_environment()});
  const redis::Info info = redis::parse_info(client.info("server"));
  const Latency latency = time_pings(client, count);
  fmt::print("{}: Redis {} ({} mode), PING p50 {:.1f} us, p99 {:.1f} us over {} round trips\n",
             client.endpoint().redacted(), info_field(info, "redis_version"),
             info_field(info, "redis_mode"), latency.p50_us, latency.p99_us, count);
  return kExitOk;
}

int run_foundation_demo(const std::optional<std::string>& redis_url, redis::TlsOptions tls,
                        bool embedded_tls) {
  logger()->set_level(spdlog::level::err);  // the demo prints its own story
  std::optional<TemporaryDirectory> certificate_directory;
  std::unique_ptr<embedded::RedisServer> server;
  std::string url;
  if (redis_url) {
    url = *redis_url;
  } else {
    embedded::RedisServerOptions options{.config = {"appendonly yes", "appendfsync always"}};
    if (embedded_tls) {
      certificate_directory.emplace("prodsafe-demo-certificates");
      const embedded::TestCertificates certificates =
          embedded::make_test_certificates(certificate_directory->path());
      options.tls = embedded::RedisServerTls{.cert_file = certificates.server_cert,
                                             .key_file = certificates.server_key,
                                             .tls_only = true};
      tls = redis::TlsOptions{.ca_file = certificates.ca_cert.string()};
    }
    server = std::make_unique<embedded::RedisServer>(std::move(options));
    url = server->url();
  }
  auto shared_client = std::make_shared<redis::Client>(
      url, redis::Options{.command_timeout = milliseconds(300),
                          .pool_size = 4,
                          .key_prefix = "prodsafe:demo:",
                          .tls = tls,
                          .sentinel = sentinel_options_from_environment()});
  redis::Client& client = *shared_client;
  // A private server goes away with its keys; a given one keeps only its own,
  // once it has answered (an unreachable one has none of ours, and its error
  // is reported once, by main).
  std::optional<RemoveKeysAtExit> remove_keys;

  step("Redis");
  if (server) {
    fmt::print("started a private redis-server (pid {}) in {}\n", server->pid(),
               server->directory().string());
    if (certificate_directory) {
      fmt::print("it listens on TLS only, with a CA and server certificate made in {}\n",
                 certificate_directory->path().string());
    }
  }
  const redis::Info info = redis::parse_info(client.info("server"));
  if (!server) remove_keys.emplace(&client);
  fmt::print("connected to {}: Redis {}, {} mode, on {}\n", client.endpoint().redacted(),
             info_field(info, "redis_version"), info_field(info, "redis_mode"),
             info_field(info, "os"));

  step("Runtime checks: is this Redis safe for prodsafe's records?");
  {
    runtime_checks::RedisRuntimeValidator validator(shared_client, {.latency_samples = 20});
    print_check_table(client.endpoint().redacted(), validator.run(), false);
  }

  step("Round trips through the connection pool");
  const Latency latency = time_pings(client, 2000);
  fmt::print("2000 PINGs: p50 {:.1f} us, p99 {:.1f} us\n", latency.p50_us, latency.p99_us);

  step("Pipelines: many commands, one write");
  const std::string pipeline_key = client.key("pipelined");
  client.del(pipeline_key);
  redis::Pipeline pipeline;
  for (int i = 0; i < 10000; ++i) pipeline.add({"INCR", pipeline_key});
  auto start = steady_clock::now();
  const auto replies = client.pipeline(pipeline);
  const double pipeline_ms = Micros(steady_clock::now() - start).count() / 1000;
  fmt::print("10000 INCRs in one pipeline: {:.1f} ms, last reply {}, counter {}\n", pipeline_ms,
             replies.back().integer(), client.get(pipeline_key).value_or("?"));

  step("Concurrency: 8 threads share a pool of 4 connections");
  const long long total = concurrent_increments(client, client.key("shared"), 8, 2500);
  fmt::print("8 x 2500 INCRs: counter is {} (expected 20000) - {}\n", total,
             total == 20000 ? "exact" : "WRONG");

  step("Lua scripts by EVALSHA");
  const redis::Script add_script("add", "return redis.call('INCRBY', KEYS[1], ARGV[1])");
  const std::string script_key = client.key("scripted");
  client.del(script_key);
  fmt::print("script {} (sha {}...) returned {}\n", add_script.name(),
             add_script.sha().substr(0, 12), add_script.run(client, {script_key}, {"5"}).integer());

  if (server) {
    step("A Redis crash: SIGKILL, then restart on the same data");
    server->kill();
    try {
      client.ping();
      fmt::print("unexpected: PING succeeded with Redis down\n");
    } catch (const StoreUnavailable& error) {
      fmt::print("while Redis is down, calls fail fast and say why:\n  {}\n", error.what());
    }
    start = steady_clock::now();
    server->restart();
    fmt::print("restarted in {:.0f} ms; the AOF (appendfsync always) kept the data: counter = {}\n",
               Micros(steady_clock::now() - start).count() / 1000,
               client.get(client.key("shared")).value_or("lost"));
    fmt::print(
        "the restarted server has an empty script cache; EVALSHA's NOSCRIPT is handled "
        "transparently: script returned {}\n",
        add_script.run(client, {script_key}, {"5"}).integer());
    const auto stats = client.stats();
    fmt::print("pool: {} connections created, {} dropped after the crash\n", stats.created,
               stats.dropped);

    step("A paused Redis (SIGSTOP): calls time out instead of hanging");
    server->pause();
    start = steady_clock::now();
    try {
      client.ping();
    } catch (const Timeout& error) {
      fmt::print("after {:.0f} ms (command_timeout 300 ms): {}\n",
                 Micros(steady_clock::now() - start).count() / 1000, error.what());
    }
    server->resume();
    fmt::print("resumed: PING -> {}\n", client.ping());
  }

  step("Exactly-once order placement");
  const std::filesystem::path journal =
      server ? server->directory() / "journal" : std::filesystem::path();
  const OrdersDemoReport orders = run_orders_demo(shared_client, server.get(), journal);

  step("A fleet-wide circuit breaker");
  const BreakerDemoReport breaker = run_breaker_demo(shared_client);

  step("What prodsafe's own metrics recorded (served at /metrics by MetricsServer)");
  print_metrics_excerpt();

  step("Summary");
  const bool exact = total == 20000;
  const bool once = orders.placed_exactly_once == orders.requested / 4 &&
                    orders.executed == orders.placed_exactly_once &&
                    orders.suppressed == orders.requested - orders.executed;
  const bool none_lost = orders.lost == 0;
  fmt::print("orders requested ........... {} ({} distinct, each by 4 workers)\n", orders.requested,
             orders.requested / 4);
  fmt::print("placed on the exchange ..... {} ({} exactly once)\n", orders.executed,
             orders.placed_exactly_once);
  fmt::print("duplicates suppressed ...... {}\n", orders.suppressed);
  fmt::print("calls retried (Redis crash)  {}\n", orders.retries);
  fmt::print("recoveries (expired lease)   {}\n", orders.recoveries);
  fmt::print("orders lost ................ {}\n", orders.lost);
  fmt::print("alerts fired ............... {} (one per breaker transition)\n\n", breaker.alerts);
  std::vector<chaos::Invariant> rows;
  const auto row = [&rows](std::string invariant, bool held) {
    rows.push_back(chaos::held_unless(std::move(invariant), held ? 0 : 1));
  };
  row("concurrent counts exact", exact);
  row("every order placed exactly once", once);
  row("no order lost", none_lost);
  row("a recovery carries a higher fencing token", orders.recovery_fenced);
  if (server) row("crash before commit, no re-placement", orders.crash_order_placed_once);
  row("breaker opened at its threshold", breaker.opened_at_threshold);
  row("breaker recovered by itself", breaker.recovered);
  std::cout << chaos::invariant_table(rows) << std::flush;
  const bool held = std::all_of(rows.begin(), rows.end(),
                                [](const chaos::Invariant& invariant) { return invariant.held; });
  return held && orders.crash_order_placed_once ? kExitOk : kExitFailed;
}

}  // namespace prodsafe::cli
