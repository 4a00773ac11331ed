// What the dashboard shows (FleetView, FleetCensus) read from a private
// redis-server: the effect census spread over refreshes, a Redis failure in
// the middle of a sweep, keys of the wrong type and bytes that are not UTF-8
// in each section, and breaker transitions between refreshes.
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "breaker_rows.hpp"
#include "dashboard_state.hpp"
#include "prodsafe/breaker/circuit_breaker.hpp"
#include "prodsafe/breaker/redis_breaker_store.hpp"
#include "prodsafe/embedded/redis_cluster.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/retry/fleet_histogram.hpp"
#include "prodsafe/retry/redis_window_store.hpp"
#include "prodsafe/retry/retry_window_tracker.hpp"
#include "retry_stats.hpp"
#include "support/raw_http.hpp"
#include "support/redis_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using prodsafe::breaker::Command;
using prodsafe::breaker::RedisBreakerStore;
using prodsafe::cli::FleetCensus;
using prodsafe::cli::FleetView;
using prodsafe::cli::FleetViewOptions;
using prodsafe::redis::Client;
using prodsafe::redis::Pipeline;

class FleetViewTest : public prodsafe::testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    client_ = std::shared_ptr<Client>(make_client());
  }

  // Effect records as RedisEffectStore writes them (claim.lua, finish.lua),
  // `count` of type `type` in `state`, written with pipelines. An
  // in_progress record's lease is live unless `state` is "expired".
  void write_records(const std::string& type, const std::string& state, int count) {
    const long long now_ms = client_->server_time_us() / 1000;
    const std::string stored = state == "expired" ? "in_progress" : state;
    const std::string lease_until =
        std::to_string(state == "expired" ? now_ms - 60'000 : now_ms + 3'600'000);
    Pipeline pipeline;
    for (int i = 0; i < count; ++i) {
      const std::string key = "effect:" + type + ":" + state + "-" + std::to_string(i);
      pipeline.add({"HSET", key, "state", stored, "token", std::to_string(1000 + i), "holder",
                    "h-" + std::to_string(i), "fp", "", "lease_until", lease_until, "created",
                    std::to_string(now_ms - 1000 * (i + 1))});
      if (state == "completed") pipeline.add({"HSET", key, "result", "r"});
      if (state == "failed") pipeline.add({"HSET", key, "error", "boom " + std::to_string(i)});
      pipeline.add({"PEXPIRE", key, "7200000"});
      if (pipeline.size() >= 3000) {
        for (const auto& reply : client_->pipeline(pipeline)) ASSERT_FALSE(reply.is_error());
        pipeline.clear();
      }
    }
    if (pipeline.size() > 0) {
      for (const auto& reply : client_->pipeline(pipeline)) ASSERT_FALSE(reply.is_error());
    }
  }

  FleetView view(std::size_t scan_budget = 20'000) {
    FleetViewOptions options{.redacted_url = server().url(), .scan_budget = scan_budget};
    options.checks_every = 10min;
    return FleetView(client_, options);
  }

  std::shared_ptr<Client> client_;
};

using Counts = std::map<std::string, std::map<std::string, std::uint64_t>>;

Counts counts_of(const nlohmann::json& effects) {
  Counts counts;
  for (const auto& [type, states] : effects["by_type"].items()) {
    for (const auto& [state, n] : states.items()) counts[type][state] = n.get<std::uint64_t>();
  }
  return counts;
}

TEST_F(FleetViewTest, ASweepOverManyRecordsTakesSeveralRefreshesThenCountsExactly) {
  write_records("ORDER_PLACEMENT", "completed", 1500);
  write_records("ORDER_PLACEMENT", "expired", 7);
  write_records("ORDER_PLACEMENT", "in_progress", 3);
  write_records("PNL_WRITE", "failed", 900);
  write_records("PNL_WRITE", "unavailable", 90);
  write_records("POSITION_UPDATE", "released", 500);
  client_->set("effect:PNL_WRITE:junk", "not a hash");
  const Counts expected = {
      {"ORDER_PLACEMENT", {{"completed", 1500}, {"expired", 7}, {"in_progress", 3}}},
      {"PNL_WRITE", {{"failed", 900}, {"unavailable", 90}, {"damaged", 1}}},
      {"POSITION_UPDATE", {{"released", 500}}}};
  // Other keys the SCAN walks past.
  for (int i = 0; i < 200; ++i) client_->set("unrelated:" + std::to_string(i), "x");

  FleetView fleet = view(500);  // one SCAN call of COUNT 500 per refresh
  int refreshes = 0;
  nlohmann::json doc;
  std::uint64_t previous_examined = 0;
  do {
    doc = fleet.refresh();
    ++refreshes;
    ASSERT_EQ(doc["redis"]["reachable"], true) << doc.dump();
    const auto& effects = doc["effects"];
    if (effects["complete"] == true) break;
    // Until the first sweep ends: its figures so far, marked incomplete.
    EXPECT_EQ(effects["sweeps_completed"], 0);
    EXPECT_GE(effects["sweep"]["keys_examined"].get<std::uint64_t>(), previous_examined);
    previous_examined = effects["sweep"]["keys_examined"].get<std::uint64_t>();
    EXPECT_LT(effects["records"].get<std::uint64_t>(), 3001u);
    ASSERT_LT(refreshes, 100) << "the sweep never ends";
  } while (true);
  EXPECT_GE(refreshes, 4) << "the scan budget did not bound a refresh";
  const auto& effects = doc["effects"];
  EXPECT_EQ(effects["sweeps_completed"], 1);
  EXPECT_EQ(effects["records"], 3001);
  EXPECT_EQ(counts_of(effects), expected) << effects["by_type"].dump();
  // The oldest orphan first, the newest failures first, each list bounded.
  ASSERT_EQ(effects["orphans"].size(), 7u);
  EXPECT_EQ(effects["orphans"][0]["id"], "expired-6");
  ASSERT_EQ(effects["failed"].size(), 20u);
  EXPECT_EQ(effects["failed"][0]["id"], "failed-0");
  EXPECT_EQ(effects["failed"][0]["error"], "boom 0");
  EXPECT_EQ(effects["oldest_in_progress"]["id"], "expired-6");

  // The next sweep keeps showing the complete one's counts while it runs.
  client_->del("effect:PNL_WRITE:junk");
  const auto during = fleet.refresh()["effects"];
  EXPECT_EQ(during["complete"], true);
  EXPECT_EQ(during["records"], 3001);
  EXPECT_EQ(during["sweep"]["in_progress"]["active"], true);
}

TEST_F(FleetViewTest, ARedisFailureInTheMiddleOfASweepRestartsIt) {
  write_records("ORDER_PLACEMENT", "completed", 2000);
  write_records("PNL_WRITE", "failed", 1000);
  // A client that gives up quickly on a paused server.
  auto quick = std::shared_ptr<Client>(make_client({.connect_timeout = 200ms,
                                                    .command_timeout = 200ms,
                                                    .pool_size = 1,
                                                    .reconnect_backoff_initial = 0ms}));
  FleetCensus census;
  census.advance(*quick, 500);
  census.advance(*quick, 500);
  EXPECT_EQ(census.effects_json()["complete"], false);
  EXPECT_GT(census.effects_json()["records"].get<std::uint64_t>(), 0u);
  server().pause();
  EXPECT_ANY_THROW(census.advance(*quick, 500));
  server().resume();
  int advances = 0;
  while (census.effects_json()["sweeps_completed"] == 0) {
    census.advance(*quick, 500);
    ASSERT_LT(++advances, 100);
  }
  const auto effects = census.effects_json();
  EXPECT_EQ(effects["records"], 3000);
  EXPECT_EQ(counts_of(effects), (Counts{{"ORDER_PLACEMENT", {{"completed", 2000}}},
                                        {"PNL_WRITE", {{"failed", 1000}}}}));
}

TEST_F(FleetViewTest, KeysOfTheWrongTypeAreDamagedRowsNotAFailedDocument) {
  auto store = std::make_shared<RedisBreakerStore>(client_);
  store->control("pay", Command::kForceOpen, {});
  client_->set("circuit:junk", "not a hash");
  prodsafe::retry::FleetHistogram histogram(client_);
  histogram.record("settlement", 2);
  client_->set("retry:histogram:junk", "not a hash");
  prodsafe::retry::RetryWindowTracker tracker(
      std::make_shared<prodsafe::retry::RedisRetryWindowStore>(client_));
  (void)tracker.start_window("job-1", "settlement");
  client_->command({"RPUSH", "retry:window:junk", "a"});
  write_records("PNL_WRITE", "completed", 2);
  client_->command({"SADD", "effect:PNL_WRITE:junk", "a"});

  const auto doc = view().refresh();
  ASSERT_EQ(doc["redis"]["reachable"], true) << doc.dump(2);
  const auto& breakers = doc["breakers"];
  ASSERT_EQ(breakers.size(), 2u) << breakers.dump(2);
  EXPECT_EQ(breakers[0]["job_type"], "junk");
  EXPECT_EQ(breakers[0]["state"], "DAMAGED");
  EXPECT_TRUE(breakers[0]["error"].is_string());
  EXPECT_EQ(breakers[1]["job_type"], "pay");
  EXPECT_EQ(breakers[1]["state"], "FORCED_OPEN");

  const auto& histograms = doc["retry"]["histograms"];
  ASSERT_EQ(histograms.size(), 2u) << doc["retry"].dump(2);
  EXPECT_EQ(histograms[0]["job_type"], "junk");
  EXPECT_TRUE(histograms[0]["error"].is_string());
  EXPECT_EQ(histograms[1]["total"], 1);
  const auto& windows = doc["retry"]["open_windows"];
  EXPECT_EQ(windows["total"], 2);
  EXPECT_EQ(windows["by_job_type"]["settlement"], 1);

  EXPECT_EQ(counts_of(doc["effects"]), (Counts{{"PNL_WRITE", {{"completed", 2}, {"damaged", 1}}}}));
  EXPECT_TRUE(doc["checks"]["results"].is_array());
}

// Nothing in the document may fail to serialise: Redis keys and values are
// bytes, and nlohmann::json refuses to dump a string that is not UTF-8.
TEST_F(FleetViewTest, BytesThatAreNotUtf8NeverBreakTheDocument) {
  client_->set("circuit:\xff\xfe", "not a hash");
  RedisBreakerStore(client_).control("caf\xc3\xa9", Command::kForceOpen, {});
  client_->command({"HSET", "circuit:\xc3(", "state", "garbage\xff"});
  prodsafe::retry::FleetHistogram histogram(client_);
  client_->command({"HSET", "retry:histogram:\xff", "1", "x\xff"});
  client_->command({"HSET", "retry:window:job-\xff", "job_type", "type-\xfe", "first", "1", "last",
                    "2", "attempts", "1"});
  client_->command({"HSET", "retry:window:job-2", "job_type", "type-\xfe", "first", "x\xff", "last",
                    "2", "attempts", "1"});
  write_records("PNL_WRITE", "failed", 1);
  client_->command(
      {"HSET", "effect:PNL_WRITE:failed-0", "error", "bad \xc0\xaf bytes", "result", "\xff"});
  client_->set("effect:\xff:id", "x");
  client_->command({"HSET", "effect:T\xfe:\xfd", "state", "in_progress\xff", "token", "1"});

  FleetView fleet = view();
  for (int i = 0; i < 2; ++i) {
    const auto doc = fleet.refresh();
    ASSERT_EQ(doc["redis"]["reachable"], true)
        << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    std::string text;
    EXPECT_NO_THROW(text = doc.dump())
        << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    EXPECT_NE(text.find("caf\xc3\xa9"), std::string::npos);  // valid UTF-8 is kept as it is
  }
  // The same rows as `prodsafe breaker list --json` and `retry stats --json` print them.
  RedisBreakerStore store(client_);
  for (const std::string& job_type : prodsafe::cli::breaker_job_types(*client_)) {
    const auto row = prodsafe::cli::read_breaker(store, job_type, {});
    EXPECT_NO_THROW((void)prodsafe::cli::breaker_json(row).dump()) << job_type;
  }
  nlohmann::json retry;
  prodsafe::cli::add_retry_stats_json(prodsafe::cli::read_retry_stats(client_, "", 20), retry);
  EXPECT_NO_THROW((void)retry.dump());
}

// Bytes Redis has sent its clients so far (INFO stats).
long long net_output_bytes(Client& client) {
  const std::string info = client.info("stats");
  const std::string field = "total_net_output_bytes:";
  const auto at = info.find(field);
  return at == std::string::npos ? -1 : std::stoll(info.substr(at + field.size()));
}

// The scan budget bounds the keys a refresh reads; the census must not read
// the records' results too (a cached result can be large): counting 200
// records of 100 KiB results costs Redis kilobytes, not 20 MB.
TEST_F(FleetViewTest, TheCensusDoesNotReadTheRecordsResults) {
  const std::string big(100 * 1024, 'r');
  Pipeline pipeline;
  for (int i = 0; i < 200; ++i) {
    pipeline.add({"HSET", "effect:REPORT:" + std::to_string(i), "state", "completed", "token", "1",
                  "holder", "h", "fp", "", "created", "1", "result", big});
  }
  for (const auto& reply : client_->pipeline(pipeline)) ASSERT_FALSE(reply.is_error());
  FleetCensus census;
  const long long before = net_output_bytes(*client_);
  while (census.effects_json()["sweeps_completed"] == 0) census.advance(*client_, 500);
  const long long sent = net_output_bytes(*client_) - before;
  EXPECT_EQ(census.effects_json()["by_type"]["REPORT"]["completed"], 200);
  EXPECT_LT(sent, 1024 * 1024) << "bytes Redis sent for one sweep of 200 records";
}

// SCAN calls Redis has answered so far (INFO commandstats).
long long scan_calls(Client& client) {
  const std::string info = client.info("commandstats");
  const std::string field = "cmdstat_scan:calls=";
  const auto at = info.find(field);
  return at == std::string::npos ? 0 : std::stoll(info.substr(at + field.size()));
}

// A SCAN with MATCH walks the whole keyspace whatever it matches: the
// budget must bound every walk a refresh makes (breakers, retry histograms
// and windows too, not only the effect records), or each refresh of a large
// Redis costs it a full walk per section, every second.
TEST_F(FleetViewTest, ARefreshOfALargeKeyspaceStaysWithinTheScanBudget) {
  Pipeline pipeline;
  for (int i = 0; i < 20'000; ++i) pipeline.add({"SET", "other:" + std::to_string(i), "x"});
  for (const auto& reply : client_->pipeline(pipeline)) ASSERT_FALSE(reply.is_error());
  RedisBreakerStore(client_).control("pay", Command::kForceOpen, {});
  prodsafe::retry::FleetHistogram(client_).record("settlement", 3);
  prodsafe::retry::RetryWindowTracker tracker(
      std::make_shared<prodsafe::retry::RedisRetryWindowStore>(client_));
  (void)tracker.start_window("job-1", "settlement");
  write_records("PNL_WRITE", "completed", 3);

  FleetView fleet = view(500);  // about one SCAN call of COUNT 500 per walk
  long long most = 0;
  nlohmann::json doc;
  for (int refresh = 0; refresh < 60; ++refresh) {
    const long long before = scan_calls(*client_);
    doc = fleet.refresh();
    most = std::max(most, scan_calls(*client_) - before);
    ASSERT_EQ(doc["redis"]["reachable"], true) << doc.dump(2);
    if (doc["effects"]["complete"] == true && doc["breakers"].size() == 1 &&
        doc["retry"]["histograms"].size() == 1 && doc["retry"]["open_windows"]["total"] == 1) {
      break;
    }
  }
  EXPECT_LE(most, 8) << "SCAN calls in one refresh";
  // Once the walks are through, the fleet is all there.
  EXPECT_EQ(doc["breakers"].size(), 1u) << doc.dump(2);
  EXPECT_EQ(doc["retry"]["histograms"].size(), 1u);
  EXPECT_EQ(doc["retry"]["open_windows"]["total"], 1);
  EXPECT_EQ(doc["effects"]["records"], 3);
}

// On a cluster each master is walked in turn, over refreshes, and the
// census counts the records of all of them once.
TEST(FleetViewClusterTest, TheCensusWalksEveryMasterOfACluster) {
  prodsafe::embedded::RedisCluster cluster({.replicas_per_master = 0});
  auto client = std::make_shared<Client>(
      cluster.url(),
      prodsafe::redis::Options{.command_timeout = 2s, .reconnect_backoff_initial = 0ms});
  for (int i = 0; i < 1200; ++i) {
    const std::string key = "effect:ORDER_PLACEMENT:c-" + std::to_string(i);
    client->command({"HSET", key, "state", "completed", "token", "7", "holder", "h", "fp", "",
                     "created", "1", "result", "ok"});
  }
  std::set<int> owners;
  for (prodsafe::embedded::RedisServer* master : cluster.masters()) {
    Client one(master->url());
    if (one.command({"DBSIZE"}).integer() > 0) owners.insert(master->port());
  }
  ASSERT_EQ(owners.size(), 3u) << "the records are not spread over the masters";
  FleetCensus census;
  int advances = 0;
  while (census.effects_json()["sweeps_completed"] == 0) {
    census.advance(*client, 500);
    ASSERT_LT(++advances, 100);
  }
  EXPECT_GE(advances, 3);
  const auto effects = census.effects_json();
  EXPECT_EQ(effects["records"], 1200);
  EXPECT_EQ(counts_of(effects), (Counts{{"ORDER_PLACEMENT", {{"completed", 1200}}}}));
}

// A dashboard's Redis user may be refused a command a section needs (a
// read-only ACL has no INFO, which the runtime checks read): that section
// says so, and the rest of the fleet is still shown.
TEST_F(FleetViewTest, ACommandTheUserMayNotRunFailsOnlyItsSection) {
  RedisBreakerStore(client_).control("pay", Command::kForceOpen, {});
  client_->command({"ACL", "SETUSER", "viewer", "on", ">viewer-pw", "~*", "+@read", "+ping",
                    "+time", "+hello", "+script|load", "+evalsha"});
  const std::string url = "redis://viewer:viewer-pw@127.0.0.1:" + std::to_string(server().port());
  auto viewer = std::make_shared<Client>(url, short_timeouts());
  FleetViewOptions options{.redacted_url = prodsafe::redis::redact_url(url)};
  options.checks_every = 10min;
  FleetView fleet(viewer, options);
  const auto doc = fleet.refresh();
  ASSERT_EQ(doc["redis"]["reachable"], true) << doc.dump(2);
  ASSERT_EQ(doc["breakers"].size(), 1u) << doc.dump(2);
  EXPECT_EQ(doc["breakers"][0]["state"], "FORCED_OPEN");
  EXPECT_EQ(doc["effects"]["complete"], true);
  EXPECT_NE(doc["checks"]["error"].get<std::string>().find("NOPERM"), std::string::npos)
      << doc["checks"].dump(2);
}

TEST_F(FleetViewTest, TransitionsBetweenRefreshesAreRecordedNewestFirst) {
  auto store = std::make_shared<RedisBreakerStore>(client_);
  prodsafe::breaker::CircuitBreaker pay(store, "pay", {.failure_threshold = 2, .subscribe = false});
  pay.record_failure();
  FleetView fleet = view();
  auto doc = fleet.refresh();
  EXPECT_TRUE(doc["transitions"].empty()) << "the first read is not a transition";
  pay.record_failure();  // trips
  store->control("ledger", Command::kForceOpen, {});
  doc = fleet.refresh();
  auto transitions = doc["transitions"];
  ASSERT_EQ(transitions.size(), 2u) << transitions.dump(2);
  std::map<std::string, nlohmann::json> by_job;
  for (const auto& t : transitions) by_job[t["job_type"]] = t;
  EXPECT_EQ(by_job["pay"]["from"], "CLOSED");
  EXPECT_EQ(by_job["pay"]["to"], "OPEN");
  EXPECT_TRUE(by_job["ledger"]["from"].is_null());
  EXPECT_EQ(by_job["ledger"]["to"], "FORCED_OPEN");
  EXPECT_GT(transitions[0]["at_ms"].get<long long>(), 0);
  // Nothing changed: nothing new. Then a reset is the newest.
  EXPECT_EQ(fleet.refresh()["transitions"].size(), 2u);
  store->control("ledger", Command::kReset, {});
  transitions = fleet.refresh()["transitions"];
  ASSERT_EQ(transitions.size(), 3u);
  EXPECT_EQ(transitions[0]["job_type"], "ledger");
  EXPECT_EQ(transitions[0]["from"], "FORCED_OPEN");
  EXPECT_EQ(transitions[0]["to"], "CLOSED");
  // An unreachable Redis keeps the transitions seen and adds none.
  server().stop();
  doc = fleet.refresh();
  EXPECT_EQ(doc["redis"]["reachable"], false);
  EXPECT_EQ(doc["transitions"].size(), 3u);
}

}  // namespace
