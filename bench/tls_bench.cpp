// TLS against plain TCP to ONE private redis-server that listens on both a
// plain and a TLS port (RedisServerTls::tls_only = false), with certificates
// made by make_test_certificates(). Every Redis benchmark here alternates a
// raw hiredis PING over plain TCP (the RTT baseline, bench/baseline.hpp), the
// operation over plain TCP and the same operation over TLS in one loop (the
// order of the two flips every iteration), so that drifts in machine load hit
// all three alike. Counters: rtt_ns, plain_ns, tls_ns, and the ratios
// plain_rtt (plain / RTT), tls_rtt (TLS / RTT) and tls_plain (TLS / plain).
//
//   BM_PoolPing             PING through the pool (Client::ping)
//   BM_FirstExecution       SideEffectWrapper::execute_once of a new id through
//                           RedisEffectStore (claim + commit: two EVALSHAs)
//   BM_NewConnectionOpenOnly Client::dedicated_connection(): TCP connect; over
//                           TLS also the handshake and the PING round trip
//                           Connection runs after it (it reads the session
//                           tickets and a refused client certificate); the
//                           close is not timed
//   BM_TlsHandshakesPer10k_* ConnectionPool::stats().created before and after
//                           10,000 TLS PINGs through a warmed-up pool, from 1
//                           and 4 threads: reported, not asserted (expected 0)
//   BM_ClientSslContext     what TlsTransport builds for every connection:
//                           SSL_CTX_new + loading the CA file (no network)
//
// No targets are asserted: the binary prints the ratios taken in this run.
#include <stdlib.h>

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "baseline.hpp"
#include "bench_main.hpp"
#include "prodsafe/embedded/test_certificates.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "prodsafe/redis/client.hpp"
#include "three_way.hpp"

namespace {

namespace fs = std::filesystem;
using prodsafe::bench::Clock;
using prodsafe::idempotency::EffectType;
using prodsafe::idempotency::RedisEffectStore;
using prodsafe::idempotency::SideEffectWrapper;
using prodsafe::idempotency::WrapperOptions;

prodsafe::embedded::TestCertificates certificates;

std::shared_ptr<prodsafe::redis::Client> plain_client() {
  return std::make_shared<prodsafe::redis::Client>(prodsafe::bench::server().url());
}

std::shared_ptr<prodsafe::redis::Client> tls_client() {
  prodsafe::redis::Options options;
  options.tls.ca_file = certificates.ca_cert.string();
  return std::make_shared<prodsafe::redis::Client>(prodsafe::bench::server().tls_url(), options);
}

using prodsafe::bench::Side;

// The two sides of every benchmark here: plain TCP, then TLS.
void three_way(benchmark::State& state, const std::function<void()>& plain,
               const std::function<void()>& tls) {
  prodsafe::bench::three_way(state, prodsafe::bench::server().port(), "plain", plain, "tls", tls);
}

void BM_PoolPing(benchmark::State& state) {
  auto plain = plain_client();
  auto tls = tls_client();
  (void)plain->ping();  // each pool opens its connection outside the loop
  (void)tls->ping();
  three_way(
      state, [&] { benchmark::DoNotOptimize(plain->ping()); },
      [&] { benchmark::DoNotOptimize(tls->ping()); });
}

std::unique_ptr<SideEffectWrapper> make_wrapper(std::shared_ptr<prodsafe::redis::Client> client) {
  WrapperOptions options;
  options.journal_directory = (prodsafe::bench::server().directory() / "journal").string();
  return std::make_unique<SideEffectWrapper>(std::make_shared<RedisEffectStore>(std::move(client)),
                                             options);
}

void BM_FirstExecution(benchmark::State& state) {
  auto plain = make_wrapper(plain_client());
  auto tls = make_wrapper(tls_client());
  // Load the scripts and open the connections outside the loop.
  plain->execute_once(EffectType::ORDER_PLACEMENT, "warm-plain", [] { return 1; });
  tls->execute_once(EffectType::ORDER_PLACEMENT, "warm-tls", [] { return 1; });
  static std::atomic<long> next{0};
  const auto first = [&](SideEffectWrapper& wrapper, const char* prefix) {
    const std::string id = fmt::format("{}-{}", prefix, next.fetch_add(1));
    auto outcome = wrapper.execute_once(EffectType::ORDER_PLACEMENT, id, [] { return 1; });
    if (!outcome.executed) state.SkipWithError("not executed");
  };
  three_way(
      state, [&] { first(*plain, "first-plain"); }, [&] { first(*tls, "first-tls"); });
}

void BM_NewConnectionOpenOnly(benchmark::State& state) {
  auto plain = plain_client();
  auto tls = tls_client();
  const auto open = [](prodsafe::redis::Client& client) {
    const auto start = Clock::now();
    auto connection = client.dedicated_connection();
    const auto took = Clock::now() - start;
    benchmark::DoNotOptimize(connection.get());
    return took;
  };  // the connection closes here, outside the timed part
  prodsafe::bench::three_way_timed(state, prodsafe::bench::server().port(),
                                   Side{"plain", [&] { return open(*plain); }},
                                   Side{"tls", [&] { return open(*tls); }});
}

// `calls` PINGs through `client`, split over `threads` threads.
void ping_from_threads(prodsafe::redis::Client& client, int threads, int calls) {
  std::vector<std::thread> workers;
  workers.reserve(static_cast<std::size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    const int share = calls / threads + (t < calls % threads ? 1 : 0);
    workers.emplace_back([&client, share] {
      for (int i = 0; i < share; ++i) benchmark::DoNotOptimize(client.ping());
    });
  }
  for (auto& worker : workers) worker.join();
}

void tls_handshakes_per_10k(benchmark::State& state, int threads) {
  std::uint64_t warmup = 0;
  std::uint64_t handshakes = 0;
  for (auto _ : state) {
    auto client = tls_client();
    ping_from_threads(*client, threads, 400);  // warm-up: the pool opens what it needs
    const std::uint64_t before = client->pool().stats().created;
    ping_from_threads(*client, threads, 10000);
    const std::uint64_t after = client->pool().stats().created;
    warmup += before;
    handshakes += after - before;
  }
  const double iterations = static_cast<double>(state.iterations());
  state.counters["warmup_handshakes"] = static_cast<double>(warmup) / iterations;
  state.counters["handshakes_per_10k"] = static_cast<double>(handshakes) / iterations;
}

void BM_ClientSslContext(benchmark::State& state) {
  const std::string ca = certificates.ca_cert.string();
  for (auto _ : state) {
    SSL_CTX* context = SSL_CTX_new(TLS_client_method());
    if (context == nullptr || SSL_CTX_load_verify_locations(context, ca.c_str(), nullptr) != 1) {
      SSL_CTX_free(context);
      state.SkipWithError("SSL_CTX");
      break;
    }
    SSL_CTX_free(context);
  }
}

// Real time, and a short minimum: most of a round trip is spent waiting, so
// the default (0.5 s of CPU time per repetition) would run for many seconds.
BENCHMARK(BM_PoolPing)->UseRealTime()->MinTime(0.3)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_FirstExecution)
    ->UseRealTime()
    ->MinTime(0.3)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);
BENCHMARK(BM_NewConnectionOpenOnly)
    ->UseRealTime()
    ->Iterations(100)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);
// Two functions, not one with Arg(): RatioReporter keys its medians by function
// name.
void BM_TlsHandshakesPer10k_1Thread(benchmark::State& state) { tls_handshakes_per_10k(state, 1); }
void BM_TlsHandshakesPer10k_4Threads(benchmark::State& state) { tls_handshakes_per_10k(state, 4); }
BENCHMARK(BM_TlsHandshakesPer10k_1Thread)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_TlsHandshakesPer10k_4Threads)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_ClientSslContext)
    ->UseRealTime()
    ->MinTime(0.2)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);

void print_three_way(const prodsafe::bench::RatioReporter& reporter, const std::string& label,
                     const std::string& name) {
  prodsafe::bench::print_three_way(reporter, label, name, "plain", "plain", "tls", "TLS");
}

void print_handshakes(const prodsafe::bench::RatioReporter& reporter, int threads) {
  const std::string name =
      fmt::format("BM_TlsHandshakesPer10k_{}", threads == 1 ? "1Thread" : "4Threads");
  fmt::print(
      "TLS handshakes per 10,000 PINGs through a warmed-up pool, {} thread(s): {:.0f} (warm-up "
      "opened {:.0f}; reported, not a target)\n",
      threads, reporter.median_counter(name, "handshakes_per_10k"),
      reporter.median_counter(name, "warmup_handshakes"));
}

}  // namespace

int main(int argc, char** argv) {
  std::string pattern = (fs::temp_directory_path() / "prodsafe-tls-bench-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    fmt::print(stderr, "cannot make a temporary directory\n");
    return 1;
  }
  const fs::path directory = pattern;
  certificates = prodsafe::embedded::make_test_certificates(directory);
  prodsafe::embedded::RedisServerOptions options;
  options.tls = prodsafe::embedded::RedisServerTls{.cert_file = certificates.server_cert,
                                                   .key_file = certificates.server_key,
                                                   .ca_file = certificates.ca_cert,
                                                   .auth_clients = false,
                                                   .tls_only = false};
  const int code = prodsafe::bench::run_benchmarks(
      argc, argv, std::move(options), [](const prodsafe::bench::RatioReporter& reporter) {
        print_three_way(reporter, "PING through the pool", "BM_PoolPing");
        print_three_way(reporter, "first execution (execute_once of a new id: claim + commit)",
                        "BM_FirstExecution");
        print_three_way(reporter,
                        "new connection (connect; TLS: + handshake + PING; close not timed)",
                        "BM_NewConnectionOpenOnly");
        print_handshakes(reporter, 1);
        print_handshakes(reporter, 4);
        const double context = reporter.median_ns("BM_ClientSslContext");
        if (context > 0) {
          fmt::print("SSL_CTX_new + CA file load (made for every TLS connection): {:.0f} ns\n",
                     context);
        }
      });
  std::error_code ignored;
  fs::remove_all(directory, ignored);
  return code;
}
