// The operator commands (prodsafe breaker, effects, retry, journal) run as a
// user would, against a private redis-server whose state the real library
// made: breakers opened by CircuitBreaker, effects in each state through
// SideEffectWrapper and RedisEffectStore, retry data through FleetHistogram
// and RetryWindowTracker, a journal left by a wrapper whose commit failed.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "prodsafe/breaker/circuit_breaker.hpp"
#include "prodsafe/breaker/redis_breaker_store.hpp"
#include "prodsafe/embedded/redis_cluster.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/embedded/test_certificates.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/retry/fleet_histogram.hpp"
#include "prodsafe/retry/redis_window_store.hpp"
#include "prodsafe/retry/retry_window_tracker.hpp"
#include "support/cli_run.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using prodsafe::breaker::CircuitBreaker;
using prodsafe::breaker::RedisBreakerStore;
using prodsafe::breaker::State;
using prodsafe::embedded::RedisServer;
using prodsafe::idempotency::EffectType;
using prodsafe::idempotency::RedisEffectStore;
using prodsafe::idempotency::SideEffectWrapper;
using prodsafe::idempotency::WrapperOptions;
using prodsafe::testing::CliRun;
using prodsafe::testing::run_cli;

std::shared_ptr<prodsafe::redis::Client> client_of(const RedisServer& server) {
  return std::make_shared<prodsafe::redis::Client>(
      server.url(),
      prodsafe::redis::Options{
          .connect_timeout = 500ms, .command_timeout = 500ms, .reconnect_backoff_initial = 0ms});
}

nlohmann::json json_of(const CliRun& run) {
  try {
    return nlohmann::json::parse(run.out);
  } catch (const nlohmann::json::exception& error) {
    ADD_FAILURE() << "not JSON (" << error.what() << "): " << run.out;
    return {};
  }
}

// The row of `rows` whose `field` is `value` (null when none).
nlohmann::json find(const nlohmann::json& rows, const std::string& field,
                    const std::string& value) {
  for (const auto& row : rows) {
    if (row.value(field, "") == value) return row;
  }
  return nullptr;
}

// A private journal directory (0700), removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("prodsafe-ops-cli-" + std::to_string(::getpid()) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(path);
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::replace);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

WrapperOptions wrapper_options(const fs::path& journal) {
  WrapperOptions options;
  options.journal_directory = journal.string();
  options.lease = 10s;
  options.ttl = 1h;
  options.commit_attempts = 1;
  options.commit_retry_delay = 0ms;
  options.journal_scan_interval = 0ms;
  return options;
}

// ---------------------------------------------------------------- breaker

TEST(BreakerCliTest, ListShowsEachStateTheLibraryLeft) {
  RedisServer server;
  auto client = client_of(server);
  auto store = std::make_shared<RedisBreakerStore>(client);
  CircuitBreaker tripped(store, "exchange", {.failure_threshold = 2, .subscribe = false});
  tripped.record_failure();
  tripped.record_failure();
  ASSERT_EQ(tripped.state(), State::kOpen);
  CircuitBreaker forced(store, "ledger", {.subscribe = false});
  forced.force_open();
  // Ratio mode, so that successes are recorded in the store too (count mode
  // sends only failures while CLOSED).
  CircuitBreaker counting(store, "pricing",
                          {.failure_ratio = 0.9, .minimum_throughput = 100, .subscribe = false});
  counting.record_failure();
  counting.record_success();
  counting.record_success();
  client->set("circuit:garbage", "not a hash");

  const CliRun table = run_cli("breaker list --redis " + server.url());
  ASSERT_EQ(table.exit_code, 0) << table.out;
  EXPECT_NE(table.out.find("JOB TYPE"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("exchange  OPEN"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("half-open in"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("ledger    FORCED_OPEN"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("garbage   DAMAGED"), std::string::npos) << table.out;

  const CliRun run = run_cli("breaker list --json --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const auto json = json_of(run);
  EXPECT_EQ(json["schema_version"], 1);
  EXPECT_EQ(json["exit_code"], 0);
  const auto& rows = json["breakers"];
  ASSERT_EQ(rows.size(), 4u) << run.out;
  const auto exchange = find(rows, "job_type", "exchange");
  EXPECT_EQ(exchange["state"], "OPEN");
  EXPECT_EQ(exchange["trips"], 1);
  EXPECT_GT(exchange["retry_after_ms"].get<long long>(), 0);
  EXPECT_LE(exchange["retry_after_ms"].get<long long>(), 30000);
  EXPECT_EQ(find(rows, "job_type", "ledger")["state"], "FORCED_OPEN");
  const auto pricing = find(rows, "job_type", "pricing");
  EXPECT_EQ(pricing["state"], "CLOSED");
  EXPECT_EQ(pricing["failures"], 1);
  EXPECT_EQ(pricing["successes"], 2);
  const auto garbage = find(rows, "job_type", "garbage");
  EXPECT_EQ(garbage["state"], "DAMAGED");
  EXPECT_NE(garbage["error"].get<std::string>().find("string"), std::string::npos);
}

TEST(BreakerCliTest, ControlCommandsChangeWhatTheLibrarySees) {
  RedisServer server;
  auto client = client_of(server);
  auto store = std::make_shared<RedisBreakerStore>(client);
  CircuitBreaker breaker(store, "exchange", {.failure_threshold = 3, .subscribe = false});
  breaker.record_failure();
  breaker.record_failure();

  CliRun run = run_cli("breaker open exchange --json --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  auto json = json_of(run);
  EXPECT_EQ(json["previous"], "CLOSED");
  EXPECT_EQ(json["state"], "FORCED_OPEN");
  EXPECT_EQ(json["transitioned"], true);
  EXPECT_EQ(breaker.state(), State::kForcedOpen);
  EXPECT_FALSE(breaker.can_retry().allowed);

  run = run_cli("breaker disable exchange --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("FORCED_OPEN -> DISABLED"), std::string::npos) << run.out;
  EXPECT_EQ(breaker.state(), State::kDisabled);

  run = run_cli("breaker close exchange --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("DISABLED -> CLOSED"), std::string::npos) << run.out;
  EXPECT_EQ(breaker.state(), State::kClosed);

  // The window was cleared: three new failures are needed to open it.
  breaker.record_failure();
  breaker.record_failure();
  EXPECT_EQ(breaker.state(), State::kClosed);
  run = run_cli("breaker reset exchange --json --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  breaker.record_failure();
  breaker.record_failure();
  EXPECT_EQ(breaker.state(), State::kClosed) << "the reset cleared the window";
  breaker.record_failure();
  EXPECT_EQ(breaker.state(), State::kOpen);

  run = run_cli("breaker show exchange --json --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  json = json_of(run);
  EXPECT_EQ(json["breaker"]["state"], "OPEN");
  EXPECT_EQ(json["breaker"]["trips"], 1);
}

// A reset from the CLI, which does not know the breaker's options, still
// clears every bucket the breaker wrote (here past the default 10): a bucket
// left behind would later be subtracted from a fresh window's totals.
TEST(BreakerCliTest, ForcingRecordsWhoDidIt) {
  RedisServer server;
  auto store = std::make_shared<RedisBreakerStore>(client_of(server));
  CircuitBreaker library(store, "ledger", {.subscribe = false});
  library.force_open("deploy-bot");

  CliRun run = run_cli("breaker list --json --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const auto ledger = find(json_of(run)["breakers"], "job_type", "ledger");
  EXPECT_EQ(ledger["forced_by"], "deploy-bot");
  EXPECT_GT(ledger["forced_at_ms"].get<long long>(), 0);
  run = run_cli("breaker list --redis " + server.url());
  EXPECT_NE(run.out.find("forced by deploy-bot"), std::string::npos) << run.out;

  run = run_cli("breaker disable exchange --json --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(json_of(run)["forced_by"].get<std::string>().rfind("prodsafe-cli:", 0), 0u)
      << "the default actor names the CLI, its user and host";
  EXPECT_EQ(store->read("exchange", {}).forced_by.rfind("prodsafe-cli:", 0), 0u);

  run = run_cli("breaker close exchange --actor 'alice (incident 42)' --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(store->read("exchange", {}).forced_by, "alice (incident 42)");
  run = run_cli("breaker show exchange --redis " + server.url());
  EXPECT_NE(run.out.find("alice (incident 42), "), std::string::npos) << run.out;

  run = run_cli("breaker open exchange --actor " + std::string(300, 'x') + " --redis " +
                server.url());
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.out.find("at most 256 bytes"), std::string::npos) << run.out;
  EXPECT_EQ(store->read("exchange", {}).state, State::kClosed) << "refused: nothing changed";

  run = run_cli("breaker reset exchange --json --redis " + server.url());
  EXPECT_TRUE(json_of(run)["forced_by"].is_null());
}

TEST(BreakerCliTest, ResetClearsBucketsBeyondTheDefaultCount) {
  RedisServer server;
  auto client = client_of(server);
  auto store = std::make_shared<RedisBreakerStore>(client);
  CircuitBreaker wide(store, "wide",
                      {.failure_threshold = 1'000'000,
                       .time_window = 1s,
                       .window_buckets = 1000,  // 1 ms buckets
                       .subscribe = false});
  auto has_high_bucket = [&] {
    const auto fields = client->command({"HKEYS", "circuit:wide"});
    for (const auto& field : fields.array()) {
      const std::string& name = field.str();
      if (name.size() > 1 && name[0] == 'e' && std::stoi(name.substr(1)) >= 10) return true;
    }
    return false;
  };
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!has_high_bucket()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    wide.record_failure();
  }
  const CliRun run = run_cli("breaker reset wide --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const auto fields = client->command({"HKEYS", "circuit:wide"});
  ASSERT_FALSE(fields.array().empty());
  for (const auto& field : fields.array()) {
    EXPECT_TRUE(field.str() == "state" || field.str() == "trips" || field.str() == "open_until")
        << "left after reset: " << field.str();
  }
}

TEST(BreakerCliTest, UnknownBreakerBadJobTypeAndUnreachableRedis) {
  RedisServer server;
  CliRun run = run_cli("breaker show nothing --redis " + server.url());
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_NE(run.out.find("no circuit breaker for job type 'nothing'"), std::string::npos)
      << run.out;
  run = run_cli("breaker show nothing --json --redis " + server.url());
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_EQ(json_of(run)["error"]["kind"], "failed");

  run = run_cli("breaker open 'a:b' --json --redis " + server.url());
  EXPECT_EQ(run.exit_code, 64) << run.out;
  EXPECT_EQ(json_of(run)["error"]["kind"], "usage");
  run = run_cli("breaker frobnicate --json");
  EXPECT_EQ(run.exit_code, 64) << run.out;
  EXPECT_EQ(json_of(run)["exit_code"], 64);
  run = run_cli("breaker list --window never --redis " + server.url());
  EXPECT_EQ(run.exit_code, 64) << run.out;

  int port = 0;
  {
    RedisServer gone;
    port = gone.port();
  }
  run = run_cli("breaker list --json --redis redis://:hunter2@127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(run.exit_code, 2) << run.out;
  const auto json = json_of(run);
  EXPECT_EQ(json["error"]["kind"], "unreachable");
  EXPECT_EQ(run.out.find("hunter2"), std::string::npos) << run.out;
}

// Over TLS, with the TLS flags every command that takes a Redis has: the
// CA given, it works; without it, the server is not trusted (78, as `check`).
TEST(BreakerCliTest, TlsFlagsReachTheServer) {
  TempDir directory;
  const auto certs = prodsafe::embedded::make_test_certificates(directory.path / "certificates");
  RedisServer server({.tls = prodsafe::embedded::RedisServerTls{.cert_file = certs.server_cert,
                                                                .key_file = certs.server_key}});
  ASSERT_TRUE(server.url().starts_with("rediss://")) << server.url();
  const std::string ca = " --cacert " + certs.ca_cert.string();
  CliRun run = run_cli("breaker open exchange --json --redis " + server.url() + ca);
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(json_of(run)["state"], "FORCED_OPEN");
  run = run_cli("breaker list --redis " + server.url() + ca);
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("exchange  FORCED_OPEN"), std::string::npos) << run.out;
  const std::string commands[] = {"effects list", "retry stats",
                                  "journal flush --dir " + directory.path.string()};
  for (const std::string& command : commands) {
    run = run_cli(command + " --redis " + server.url() + ca);
    EXPECT_EQ(run.exit_code, 0) << command << ": " << run.out;
    run = run_cli(command + " --json --redis " + server.url());
    EXPECT_EQ(run.exit_code, 78) << command << ": " << run.out;
    EXPECT_EQ(json_of(run)["error"]["kind"], "config") << command;
  }
}

// ---------------------------------------------------------------- effects

TEST(EffectsCliTest, ListShowsEveryStateAndGarbagePerKey) {
  RedisServer server;
  TempDir journal;
  auto client = client_of(server);
  auto store = std::make_shared<RedisEffectStore>(client);
  WrapperOptions options = wrapper_options(journal.path);
  options.per_type["LEDGER_WRITE"] = {.record_failures = true};
  SideEffectWrapper wrapper(store, options);

  (void)wrapper.execute_once(EffectType::ORDER_PLACEMENT, "done-1",
                             [] { return std::string("filled"); });
  EXPECT_THROW((void)wrapper.execute_once(
                   EffectType::LEDGER_WRITE, "bad-1",
                   []() -> std::string { throw std::runtime_error("exchange said no"); }),
               std::runtime_error);
  // A claim whose worker died: its lease runs out.
  const auto orphan = store->claim("effect:ORDER_PLACEMENT:orphan-1", "", 100ms, 1h);
  ASSERT_EQ(orphan.status, prodsafe::idempotency::ClaimStatus::kClaimed);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (store->inspect("effect:ORDER_PLACEMENT:orphan-1")->lease_remaining.count() > 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::sleep_for(20ms);
  }
  // Garbage: a string, and a hash that is no record.
  client->set("effect:ORDER_PLACEMENT:garbage-string", "oops");
  (void)client->command(
      {"HSET", "effect:PNL_WRITE:garbage-hash", "state", "completed", "token", "not-a-number"});

  // While an effect runs, its record is in progress with a live lease.
  CliRun during_table;
  CliRun during_json;
  CliRun refused;
  (void)wrapper.execute_once(EffectType::POSITION_UPDATE, "live-1", [&] {
    during_table = run_cli("effects list --redis " + server.url());
    during_json = run_cli("effects list --json --redis " + server.url());
    refused = run_cli("effects clear POSITION_UPDATE live-1 --redis " + server.url());
    return std::string("moved");
  });

  ASSERT_EQ(during_table.exit_code, 0) << during_table.out;
  for (const char* expected :
       {"POSITION_UPDATE  live-1", "in_progress", "ORDER_PLACEMENT  orphan-1", "expired",
        "completed", "result filled", "LEDGER_WRITE     bad-1", "failed", "exchange said no",
        "garbage-string", "damaged", "By type and state"}) {
    EXPECT_NE(during_table.out.find(expected), std::string::npos) << expected << " in:\n"
                                                                  << during_table.out;
  }
  ASSERT_EQ(during_json.exit_code, 0) << during_json.out;
  const auto json = json_of(during_json);
  EXPECT_EQ(json["matched"], 6);
  const auto& rows = json["effects"];
  const auto live = find(rows, "id", "live-1");
  EXPECT_EQ(live["state"], "in_progress");
  EXPECT_EQ(live["lease_live"], true);
  EXPECT_GT(live["lease_remaining_ms"].get<long long>(), 0);
  EXPECT_EQ(find(rows, "id", "orphan-1")["state"], "expired");
  EXPECT_EQ(find(rows, "id", "orphan-1")["lease_live"], false);
  const auto done = find(rows, "id", "done-1");
  EXPECT_EQ(done["state"], "completed");
  EXPECT_EQ(done["result"], "filled");
  EXPECT_GT(done["ttl_remaining_ms"].get<long long>(), 0);
  EXPECT_FALSE(done["age_ms"].is_null());
  const auto failed = find(rows, "id", "bad-1");
  EXPECT_EQ(failed["state"], "failed");
  EXPECT_NE(failed["error"].get<std::string>().find("exchange said no"), std::string::npos);
  EXPECT_EQ(find(rows, "id", "garbage-string")["state"], "damaged");
  const auto hash = find(rows, "id", "garbage-hash");
  EXPECT_EQ(hash["state"], "damaged");
  EXPECT_NE(hash["error"].get<std::string>().find("not a number"), std::string::npos);
  EXPECT_EQ(json["counts"]["ORDER_PLACEMENT"]["damaged"], 1);

  // clear refused the live claim, saying why, and left it.
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_NE(refused.out.find("refusing to clear effect:POSITION_UPDATE:live-1"), std::string::npos)
      << refused.out;
  EXPECT_NE(refused.out.find("--force"), std::string::npos) << refused.out;
  EXPECT_EQ(store->inspect("effect:POSITION_UPDATE:live-1")->state, "completed");

  // Filters.
  CliRun run = run_cli("effects list --json --state expired --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  ASSERT_EQ(json_of(run)["effects"].size(), 1u) << run.out;
  EXPECT_EQ(json_of(run)["effects"][0]["id"], "orphan-1");
  run = run_cli("effects list --json --type LEDGER_WRITE --redis " + server.url());
  ASSERT_EQ(json_of(run)["effects"].size(), 1u) << run.out;
  EXPECT_EQ(json_of(run)["effects"][0]["id"], "bad-1");
  run = run_cli("effects list --json --state damaged --redis " + server.url());
  EXPECT_EQ(json_of(run)["matched"], 2) << run.out;
  run = run_cli("effects list --json --older-than 1h --redis " + server.url());
  EXPECT_EQ(json_of(run)["matched"], 0) << run.out;
  run = run_cli("effects list --json --older-than 0s --state completed --redis " + server.url());
  EXPECT_EQ(json_of(run)["matched"], 2) << run.out;  // done-1 and live-1
  run = run_cli("effects list --json --limit 2 --redis " + server.url());
  EXPECT_EQ(json_of(run)["effects"].size(), 2u) << run.out;
  EXPECT_EQ(json_of(run)["truncated"], true) << run.out;
  EXPECT_EQ(run_cli("effects list --state bogus --redis " + server.url()).exit_code, 64);
  EXPECT_EQ(run_cli("effects list --older-than 3x --redis " + server.url()).exit_code, 64);
}

TEST(EffectsCliTest, ShowAndClearSayWhatTheyDelete) {
  RedisServer server;
  TempDir journal;
  auto client = client_of(server);
  auto store = std::make_shared<RedisEffectStore>(client);
  SideEffectWrapper wrapper(store, wrapper_options(journal.path));
  int runs = 0;
  auto place = [&] {
    ++runs;
    return std::string("order-") + std::to_string(runs);
  };
  (void)wrapper.execute_once(EffectType::ORDER_PLACEMENT, "42", place);

  CliRun run = run_cli("effects show ORDER_PLACEMENT 42 --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("completed"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("order-1"), std::string::npos) << run.out;
  run = run_cli("effects show ORDER_PLACEMENT 42 --json --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const auto token = json_of(run)["effect"]["token"].get<std::uint64_t>();
  EXPECT_GT(token, 0u);

  run = run_cli("effects clear ORDER_PLACEMENT 42 --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("About to delete effect:ORDER_PLACEMENT:42: state completed, token " +
                         std::to_string(token)),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("Deleted effect:ORDER_PLACEMENT:42"), std::string::npos) << run.out;
  EXPECT_FALSE(store->inspect("effect:ORDER_PLACEMENT:42"));
  // Cleared: the effect runs again.
  EXPECT_EQ(wrapper.execute_once(EffectType::ORDER_PLACEMENT, "42", place).result, "order-2");

  run = run_cli("effects show ORDER_PLACEMENT nope --json --redis " + server.url());
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_NE(json_of(run)["error"]["message"].get<std::string>().find("no effect record"),
            std::string::npos);
  run = run_cli("effects clear ORDER_PLACEMENT nope --redis " + server.url());
  EXPECT_EQ(run.exit_code, 1) << run.out;

  // A live claim: refused, then cleared with --force (JSON says what went).
  const auto claim = store->claim("effect:PNL_WRITE:7", "", 1h, 2h);
  ASSERT_EQ(claim.status, prodsafe::idempotency::ClaimStatus::kClaimed);
  run = run_cli("effects clear PNL_WRITE 7 --json --redis " + server.url());
  EXPECT_EQ(run.exit_code, 1) << run.out;
  auto json = json_of(run);
  EXPECT_EQ(json["deleted"], false);
  EXPECT_EQ(json["effect"]["lease_live"], true);
  EXPECT_TRUE(store->inspect("effect:PNL_WRITE:7"));
  run = run_cli("effects clear PNL_WRITE 7 --force --json --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  json = json_of(run);
  EXPECT_EQ(json["deleted"], true);
  EXPECT_EQ(json["forced"], true);
  EXPECT_EQ(json["effect"]["token"], claim.token);
  EXPECT_FALSE(store->inspect("effect:PNL_WRITE:7"));

  // Garbage: show reports it (exit 1), clear needs --force.
  client->set("effect:PNL_WRITE:junk", "x");
  run = run_cli("effects show PNL_WRITE junk --redis " + server.url());
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_NE(run.out.find("damaged"), std::string::npos) << run.out;
  EXPECT_EQ(run_cli("effects clear PNL_WRITE junk --redis " + server.url()).exit_code, 1);
  EXPECT_TRUE(client->get("effect:PNL_WRITE:junk"));
  run = run_cli("effects clear PNL_WRITE junk --force --redis " + server.url());
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_FALSE(client->get("effect:PNL_WRITE:junk"));

  EXPECT_EQ(run_cli("effects show 'BAD:TYPE' 1 --redis " + server.url()).exit_code, 64);
}

// Applications that set redis::Options::key_prefix: --key-prefix finds their
// keys, and only theirs.
TEST(EffectsCliTest, KeyPrefixSelectsOneTenant) {
  RedisServer server;
  TempDir journal;
  auto tenant = std::make_shared<prodsafe::redis::Client>(
      server.url(), prodsafe::redis::Options{.key_prefix = "tenant-a:"});
  SideEffectWrapper wrapper(std::make_shared<RedisEffectStore>(tenant),
                            wrapper_options(journal.path));
  (void)wrapper.execute_once(EffectType::ORDER_PLACEMENT, "p-1", [] { return std::string("x"); });
  CircuitBreaker breaker(std::make_shared<RedisBreakerStore>(tenant), "exchange",
                         {.subscribe = false});
  breaker.force_open();

  CliRun run = run_cli("effects list --json --key-prefix tenant-a: --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  ASSERT_EQ(json_of(run)["effects"].size(), 1u) << run.out;
  EXPECT_EQ(json_of(run)["effects"][0]["key"], "tenant-a:effect:ORDER_PLACEMENT:p-1");
  run = run_cli("effects list --json --redis " + server.url());
  EXPECT_EQ(json_of(run)["matched"], 0) << run.out;
  run = run_cli("breaker list --json --key-prefix tenant-a: --redis " + server.url());
  ASSERT_EQ(json_of(run)["breakers"].size(), 1u) << run.out;
  EXPECT_EQ(json_of(run)["breakers"][0]["state"], "FORCED_OPEN");
  run = run_cli("breaker list --json --redis " + server.url());
  EXPECT_TRUE(json_of(run)["breakers"].empty()) << run.out;
  run = run_cli("effects clear ORDER_PLACEMENT p-1 --key-prefix tenant-a: --redis " + server.url());
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_FALSE(tenant->get("tenant-a:effect:ORDER_PLACEMENT:p-1"));
}

// On a Redis Cluster the keys live on several masters: the listing commands
// scan every one (a keyless SCAN through the client would see one).
TEST(EffectsCliTest, ListCoversEveryMasterOfACluster) {
  prodsafe::embedded::RedisCluster cluster({.replicas_per_master = 0});
  TempDir journal;
  auto client = std::make_shared<prodsafe::redis::Client>(
      cluster.url(), prodsafe::redis::Options{.command_timeout = 2s});
  SideEffectWrapper wrapper(std::make_shared<RedisEffectStore>(client),
                            wrapper_options(journal.path));
  for (int i = 0; i < 30; ++i) {
    (void)wrapper.execute_once(EffectType::ORDER_PLACEMENT, "c-" + std::to_string(i),
                               [] { return std::string("ok"); });
  }
  auto store = std::make_shared<RedisBreakerStore>(client);
  for (const char* job : {"alpha", "beta", "gamma", "delta", "epsilon"}) {
    CircuitBreaker(store, job, {.subscribe = false}).force_open();
  }

  CliRun run = run_cli("effects list --json --limit 1000 --redis " + cluster.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(json_of(run)["matched"], 30) << run.out;
  EXPECT_EQ(json_of(run)["counts"]["ORDER_PLACEMENT"]["completed"], 30) << run.out;
  run = run_cli("breaker list --json --redis " + cluster.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(json_of(run)["breakers"].size(), 5u) << run.out;
}

// ---------------------------------------------------------------- retry

TEST(RetryCliTest, StatsShowTheFleetHistogramAndOpenWindows) {
  RedisServer server;
  auto client = client_of(server);
  prodsafe::retry::FleetHistogram histogram(client);
  for (int attempts : {1, 1, 1, 2, 3, 4, 5, 7, 15, 30}) histogram.record("settlement", attempts);
  histogram.record("pricing", 1);
  prodsafe::retry::RetryWindowTracker tracker(
      std::make_shared<prodsafe::retry::RedisRetryWindowStore>(client));
  (void)tracker.start_window("job-1", "settlement");
  (void)tracker.increment_attempt("job-1");
  (void)tracker.increment_attempt("job-1");
  (void)tracker.start_window("job-2", "pricing");
  (void)tracker.start_window("job-3", "settlement");
  (void)tracker.close_window("job-3", true);

  CliRun run = run_cli("retry stats --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("JOB TYPE    1  2  3  4-5  6-10  11-20  21+  TOTAL  RETRIED"),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("settlement  3  1  1  2    1     1      1    10     70.0%"),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("Open retry windows: 2"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("job-1"), std::string::npos) << run.out;

  run = run_cli("retry stats settlement --json --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  const auto json = json_of(run);
  ASSERT_EQ(json["histograms"].size(), 1u);
  const auto& counts = json["histograms"][0]["counts"];
  EXPECT_EQ(counts["1"], 3);
  EXPECT_EQ(counts["4-5"], 2);
  EXPECT_EQ(counts["21+"], 1);
  EXPECT_EQ(json["histograms"][0]["total"], 10);
  EXPECT_EQ(json["open_windows"]["total"], 1);
  const auto& window = json["open_windows"]["windows"][0];
  EXPECT_EQ(window["job_id"], "job-1");
  EXPECT_EQ(window["attempts"], 3);
  EXPECT_GT(window["expires_in_ms"].get<long long>(), 0);

  // --limit keeps the longest open.
  run = run_cli("retry stats --json --limit 1 --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(json_of(run)["open_windows"]["total"], 2);
  ASSERT_EQ(json_of(run)["open_windows"]["windows"].size(), 1u);
  EXPECT_EQ(json_of(run)["open_windows"]["windows"][0]["job_id"], "job-1");

  client->set("retry:histogram:broken", "x");
  run = run_cli("retry stats --json --redis " + server.url());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(find(json_of(run)["histograms"], "job_type", "broken")["error"], nullptr) << run.out;
}

// ---------------------------------------------------------------- journal

TEST(JournalCliTest, ListAndFlushWhatAFailedCommitLeft) {
  TempDir journal;
  auto server = std::make_unique<RedisServer>();
  const std::string url = server->url();
  {
    auto client = client_of(*server);
    auto store = std::make_shared<RedisEffectStore>(client);
    SideEffectWrapper wrapper(store, wrapper_options(journal.path));
    // Redis dies while the effect runs: its result goes to the journal.
    const auto outcome = wrapper.execute_once(EffectType::ORDER_PLACEMENT, "j-1", [&] {
      server->kill();
      return std::string("placed");
    });
    ASSERT_TRUE(outcome.commit_pending);
    ASSERT_EQ(wrapper.journal_pending(), 1u);

    // Its process is alive: list says so, flush leaves it alone.
    const CliRun alive = run_cli("journal list --json --dir " + journal.path.string());
    ASSERT_EQ(alive.exit_code, 0) << alive.out;
    const auto json = json_of(alive);
    ASSERT_EQ(json["journals"].size(), 1u) << alive.out;
    EXPECT_EQ(json["journals"][0]["owner_alive"], true);
    ASSERT_EQ(json["journals"][0]["pending"].size(), 1u);
    EXPECT_EQ(json["journals"][0]["pending"][0]["key"], "effect:ORDER_PLACEMENT:j-1");
    EXPECT_EQ(json["journals"][0]["pending"][0]["result"], "placed");
  }
  // The wrapper is gone (as if its process died): the file waits for adoption.
  const CliRun table = run_cli("journal list --dir " + journal.path.string());
  ASSERT_EQ(table.exit_code, 0) << table.out;
  EXPECT_NE(table.out.find("1 result(s) waiting"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("gone (flush commits them)"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("effect:ORDER_PLACEMENT:j-1"), std::string::npos) << table.out;

  // Redis still down: flush says so (2) and keeps the entry.
  CliRun flush = run_cli("journal flush --json --redis " + url + " --dir " + journal.path.string());
  EXPECT_EQ(flush.exit_code, 2) << flush.out;
  EXPECT_EQ(json_of(flush)["error"]["kind"], "unreachable");
  EXPECT_NE(run_cli("journal list --dir " + journal.path.string()).out.find("1 result(s)"),
            std::string::npos);

  server->restart();
  flush = run_cli("journal flush --redis " + url + " --dir " + journal.path.string());
  ASSERT_EQ(flush.exit_code, 0) << flush.out;
  EXPECT_NE(flush.out.find("committed   effect:ORDER_PLACEMENT:j-1"), std::string::npos)
      << flush.out;
  auto client = client_of(*server);
  RedisEffectStore store(client);
  const auto record = store.inspect("effect:ORDER_PLACEMENT:j-1");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, "completed");
  EXPECT_EQ(record->result, "placed");
  const CliRun after = run_cli("journal list --json --dir " + journal.path.string());
  std::size_t pending = 0;
  // The document outlives the loop (a range-for over a temporary's member
  // would read freed memory).
  const auto after_json = json_of(after);
  for (const auto& file : after_json["journals"]) pending += file["pending"].size();
  EXPECT_EQ(pending, 0u) << after.out;

  // flush needs --redis; list takes none.
  EXPECT_EQ(run_cli("journal flush --dir " + journal.path.string()).exit_code, 64);
  EXPECT_EQ(run_cli("journal list --redis " + url + " --dir " + journal.path.string()).exit_code,
            64);
}

// A journal belongs to one store: a flush for another Redis leaves it alone.
// A result whose effect another worker ran meanwhile is reported as a lost
// lease (exit 1), settled, and the other worker's record kept.
TEST(JournalCliTest, FlushLeavesOtherStoresAloneAndReportsLostLeases) {
  TempDir journal;
  TempDir other_journal;
  RedisServer server;
  RedisServer other;
  {
    SideEffectWrapper wrapper(std::make_shared<RedisEffectStore>(client_of(server)),
                              wrapper_options(journal.path));
    const auto outcome = wrapper.execute_once(EffectType::LEDGER_WRITE, "k-1", [&] {
      server.kill();
      return std::string("first");
    });
    ASSERT_TRUE(outcome.commit_pending);
  }
  CliRun run =
      run_cli("journal flush --json --redis " + other.url() + " --dir " + journal.path.string());
  ASSERT_EQ(run.exit_code, 0) << run.out;
  auto json = json_of(run);
  EXPECT_TRUE(json["committed"].empty()) << run.out;
  ASSERT_EQ(json["left_alone"].size(), 1u) << run.out;
  EXPECT_EQ(json["left_alone"][0]["why"], "another store's");
  EXPECT_EQ(json["left_alone"][0]["pending"].size(), 1u);
  EXPECT_FALSE(client_of(other)->get("effect:LEDGER_WRITE:k-1"));

  // The record was lost with the server (no persistence); another worker
  // runs the effect again before the journal is flushed.
  server.restart();
  auto client = client_of(server);
  {
    SideEffectWrapper second(std::make_shared<RedisEffectStore>(client),
                             wrapper_options(other_journal.path));
    (void)second.execute_once(EffectType::LEDGER_WRITE, "k-1",
                              [] { return std::string("second"); });
  }
  run = run_cli("journal flush --redis " + server.url() + " --dir " + journal.path.string());
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_NE(run.out.find("lease lost  effect:LEDGER_WRITE:k-1"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("may have run twice"), std::string::npos) << run.out;
  EXPECT_EQ(RedisEffectStore(client).inspect("effect:LEDGER_WRITE:k-1")->result, "second");
  run = run_cli("journal list --json --dir " + journal.path.string());
  std::size_t pending = 0;
  const auto run_json = json_of(run);
  for (const auto& file : run_json["journals"]) pending += file["pending"].size();
  EXPECT_EQ(pending, 0u) << "settled: " << run.out;
}

}  // namespace
