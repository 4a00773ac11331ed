// The validator against real redis-servers started with the configuration
// under test.
#include "prodsafe/runtime_checks/redis_runtime_validator.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/metrics/registry.hpp"
#include "prodsafe/redis/info.hpp"
#include "support/log_capture.hpp"

namespace prodsafe::runtime_checks {
namespace {

using namespace std::chrono_literals;

struct Checked {
  std::vector<CheckResult> results;
  const CheckResult& operator[](const std::string& name) const {
    for (const CheckResult& result : results) {
      if (result.name == name) return result;
    }
    throw std::out_of_range("no check named " + name);
  }
};

Checked check(const embedded::RedisServer& server, ValidatorOptions options = {}) {
  options.latency_samples = 5;
  RedisRuntimeValidator validator(std::make_shared<redis::Client>(server.url()), options);
  return Checked{validator.run()};
}

Level persistence_with(std::vector<std::string> config, ValidatorOptions options = {}) {
  embedded::RedisServer server({.config = std::move(config)});
  return check(server, options)["persistence"].level;
}

// Each persistence setup on a real server, rated by what a crash loses; the
// default gate (validate_on_startup(), fail at ERROR) fails every setup that
// loses acknowledged claims when redis-server is killed or the machine
// crashes with seconds unsynced.
TEST(ValidatorPersistenceTest, EachAofAndRdbCombination) {
  EXPECT_EQ(persistence_with({"appendonly yes", "appendfsync always"}), Level::kOk);
  EXPECT_EQ(persistence_with({"appendonly yes", "appendfsync everysec"}), Level::kWarning);
  EXPECT_EQ(
      persistence_with({"appendonly yes", "appendfsync everysec"}, {.strict_durability = true}),
      Level::kError);
  EXPECT_EQ(persistence_with({"appendonly yes", "appendfsync no"}), Level::kError);
  EXPECT_EQ(persistence_with({"appendonly no", "save 3600 1 300 100 60 10000"}), Level::kCritical);
  EXPECT_EQ(persistence_with({"appendonly no", "save \"\""}), Level::kCritical);
  EXPECT_EQ(persistence_with({"appendonly yes", "appendfsync always", "save 60 1"}), Level::kOk);
}

bool passes_default_gate(std::vector<std::string> config) {
  config.push_back("maxmemory-policy noeviction");
  embedded::RedisServer server({.config = std::move(config)});
  RedisRuntimeValidator validator(std::make_shared<redis::Client>(server.url()),
                                  {.latency_samples = 0});
  return validator.validate_on_startup();
}

TEST(ValidatorPersistenceTest, TheDefaultGateFailsSetupsThatLoseAcknowledgedClaims) {
  EXPECT_TRUE(passes_default_gate({"appendonly yes", "appendfsync always"}));
  EXPECT_TRUE(passes_default_gate({"appendonly yes", "appendfsync everysec"}));
  EXPECT_FALSE(passes_default_gate({"appendonly yes", "appendfsync no"}));
  EXPECT_FALSE(passes_default_gate({"appendonly no", "save 900 1"}));
  EXPECT_FALSE(passes_default_gate({"appendonly no", "save \"\""}));
}

TEST(ValidatorEvictionTest, EachPolicyFamily) {
  auto level = [](const char* policy, const char* maxmemory) {
    embedded::RedisServer server({.config = {std::string("maxmemory-policy ") + policy,
                                             std::string("maxmemory ") + maxmemory}});
    return check(server)["eviction_policy"].level;
  };
  EXPECT_EQ(level("noeviction", "64mb"), Level::kOk);
  EXPECT_EQ(level("volatile-lru", "64mb"), Level::kError);
  EXPECT_EQ(level("volatile-ttl", "64mb"), Level::kError);
  EXPECT_EQ(level("allkeys-lru", "64mb"), Level::kCritical);
  EXPECT_EQ(level("allkeys-random", "64mb"), Level::kCritical);
  EXPECT_EQ(level("allkeys-lru", "0"), Level::kOk);
}

// Fills a small maxmemory until used memory reaches `target` of it.
void fill_to(redis::Client& client, double target) {
  const std::string value(16 * 1024, 'x');
  for (int i = 0;; ++i) {
    const redis::Info info = redis::parse_info(client.info("memory"));
    const double used = static_cast<double>(info.number("used_memory").value_or(0)) /
                        static_cast<double>(info.number("maxmemory").value_or(1));
    if (used >= target) return;
    client.set("fill:" + std::to_string(i) + ":" + std::to_string(target), value);
  }
}

TEST(ValidatorMemoryTest, EachHeadroomLevelIsCrossed) {
  embedded::RedisServer server({.config = {"maxmemory 6mb", "maxmemory-policy noeviction"}});
  auto client = std::make_shared<redis::Client>(server.url());
  EXPECT_EQ(check(server)["memory_headroom"].level, Level::kOk);
  fill_to(*client, 0.85);
  EXPECT_EQ(check(server)["memory_headroom"].level, Level::kWarning);
  fill_to(*client, 0.925);
  EXPECT_EQ(check(server)["memory_headroom"].level, Level::kError);
  fill_to(*client, 0.975);
  const CheckResult critical = check(server)["memory_headroom"];
  EXPECT_EQ(critical.level, Level::kCritical);
  EXPECT_NE(critical.observed.find("maxmemory"), std::string::npos) << critical.observed;
}

// Without maxmemory, a redis-server on this machine is measured against its
// own cgroup's limit when that is lower than the machine's memory; either way
// it is recognised as local (here over loopback and over a unix socket), so
// the report never says a container limit was out of sight.
TEST(ValidatorMemoryTest, ALocalRedisIsMeasuredAgainstItsOwnCgroup) {
  embedded::RedisServer server({.unix_socket = true});
  for (const std::string& url : {server.url(), server.unix_url()}) {
    RedisRuntimeValidator validator(std::make_shared<redis::Client>(url), {.latency_samples = 0});
    const Checked checked{validator.run()};
    const std::string& observed = checked["memory_headroom"].observed;
    EXPECT_EQ(observed.find("not visible"), std::string::npos) << url << ": " << observed;
    EXPECT_TRUE(observed.find("cgroup limit /sys/fs/cgroup/") != std::string::npos ||
                observed.find("redis-server's cgroup sets no lower limit") != std::string::npos)
        << url << ": " << observed;
  }
}

TEST(ValidatorRoleTest, ReplicaIsCritical) {
  embedded::RedisServer primary;
  embedded::RedisServer replica(
      {.config = {"replicaof 127.0.0.1 " + std::to_string(primary.port())}});
  EXPECT_EQ(check(primary)["role"].level, Level::kOk);
  const CheckResult role = check(replica)["role"];
  EXPECT_EQ(role.level, Level::kCritical);
  EXPECT_NE(role.remediation.find(std::to_string(primary.port())), std::string::npos);
}

// No remediation may tell a user of such a server to run CONFIG SET: it would
// fail as CONFIG GET did.
void expect_no_config_set(const Checked& checked) {
  for (const CheckResult& result : checked.results) {
    EXPECT_EQ(result.remediation.find("CONFIG SET"), std::string::npos)
        << result.name << ": " << result.remediation;
  }
}

TEST(ValidatorManagedTest, DisabledConfigIsAWarningNotAnException) {
  embedded::RedisServer server(
      {.config = {"rename-command CONFIG \"\"", "appendonly yes", "maxmemory 64mb",
                  "maxmemory 64mb", "maxmemory-policy allkeys-lru"}});
  const Checked checked = check(server);
  EXPECT_EQ(checked["persistence"].level, Level::kWarning);
  EXPECT_NE(checked["persistence"].message.find("cannot be verified"), std::string::npos);
  EXPECT_EQ(checked["eviction_policy"].level, Level::kCritical) << "read from INFO";
  EXPECT_NE(checked["eviction_policy"].remediation.find("redis.conf"), std::string::npos)
      << checked["eviction_policy"].remediation;
  EXPECT_EQ(checked["version"].level, Level::kOk);
  expect_no_config_set(checked);
}

TEST(ValidatorManagedTest, RenamedConfigWithoutAofIsStillCritical) {
  embedded::RedisServer server(
      {.config = {"rename-command CONFIG \"\"", "appendonly no", "save 900 1", "maxmemory 8mb",
                  "maxmemory-policy noeviction"}});
  auto client = std::make_shared<redis::Client>(server.url());
  fill_to(*client, 0.97);
  const Checked checked = check(server);
  EXPECT_EQ(checked["persistence"].level, Level::kCritical) << "aof_enabled:0 is in INFO";
  EXPECT_NE(checked["persistence"].remediation.find("appendonly yes"), std::string::npos);
  EXPECT_NE(checked["persistence"].remediation.find("console"), std::string::npos)
      << checked["persistence"].remediation;
  EXPECT_EQ(checked["memory_headroom"].level, Level::kCritical);
  expect_no_config_set(checked);
}

TEST(ValidatorManagedTest, ConfigDeniedByAclGetsTheSameAdvice) {
  embedded::RedisServer server(
      {.config = {"appendonly no", "save \"\"", "maxmemory 64mb", "maxmemory-policy volatile-lru",
                  "user checker on >pw ~* &* +@all -config"}});
  RedisRuntimeValidator validator(std::make_shared<redis::Client>(fmt::format(
                                      "redis://checker:pw@127.0.0.1:{}", server.port())),
                                  {.latency_samples = 0});
  const Checked checked{validator.run()};
  EXPECT_EQ(checked["persistence"].level, Level::kCritical);
  EXPECT_EQ(checked["eviction_policy"].level, Level::kError);
  expect_no_config_set(checked);
  // With CONFIG allowed, CONFIG SET is the quickest fix and is offered.
  const Checked admin = check(server);
  EXPECT_NE(admin["eviction_policy"].remediation.find("CONFIG SET"), std::string::npos)
      << admin["eviction_policy"].remediation;
}

TEST(ValidatorStartupTest, ValidateOnStartupLogsAndHonoursTheFailLevel) {
  prodsafe::testing::LogCapture logs;
  embedded::RedisServer server({.config = {"appendonly yes", "appendfsync always"}});
  RedisRuntimeValidator validator(std::make_shared<redis::Client>(server.url()));
  EXPECT_TRUE(validator.validate_on_startup());
  EXPECT_NE(logs.text().find("redis check persistence: OK"), std::string::npos) << logs.text();
  const Summary summary = validator.get_summary();
  EXPECT_EQ(summary.total_checks, 8u);
  EXPECT_EQ(summary.ok + summary.warning + summary.error + summary.critical, summary.total_checks);

  embedded::RedisServer unsafe;  // no persistence: CRITICAL
  RedisRuntimeValidator strict(std::make_shared<redis::Client>(unsafe.url()));
  EXPECT_FALSE(strict.validate_on_startup(Level::kError));
  EXPECT_NE(logs.text().find("[critical] redis check persistence: CRITICAL"), std::string::npos);
  EXPECT_GE(strict.get_summary().critical, 1u);
}

TEST(ValidatorUnreachableTest, RunThrowsValidateReturnsFalse) {
  int port = 0;
  {
    embedded::RedisServer gone;
    port = gone.port();
  }
  auto client = std::make_shared<redis::Client>(
      "redis://:secret-pw@127.0.0.1:" + std::to_string(port),
      redis::Options{.connect_timeout = 200ms, .reconnect_backoff_initial = 0ms});
  RedisRuntimeValidator validator(client);
  EXPECT_THROW(validator.run(), StoreUnavailable);
  prodsafe::testing::LogCapture logs;
  EXPECT_FALSE(validator.validate_on_startup());
  EXPECT_EQ(logs.text().find("secret-pw"), std::string::npos);
  EXPECT_THROW(RedisRuntimeValidator(nullptr), InvalidArgument);
  EXPECT_THROW(
      RedisRuntimeValidator(client, {.memory_warning_free = 0.05, .memory_error_free = 0.10}),
      InvalidArgument);
}

TEST(ValidatorMetricsTest, EachRunPublishesItsLevels) {
  embedded::RedisServer server(
      {.config = {"appendonly no", "save \"\"", "maxmemory 64mb", "maxmemory-policy allkeys-lru"}});
  metrics::Registry registry;
  RedisRuntimeValidator validator(std::make_shared<redis::Client>(server.url()),
                                  {.latency_samples = 2, .metrics = &registry});
  const Summary summary = summarize(validator.run());
  ASSERT_GE(summary.critical, 2U);  // no persistence, evicting every key
  const std::string text = registry.serialize();
  EXPECT_NE(text.find(fmt::format("prodsafe_runtime_checks{{level=\"critical\"}} {}\n",
                                  summary.critical)),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(fmt::format("prodsafe_runtime_checks{{level=\"ok\"}} {}\n", summary.ok)),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("prodsafe_runtime_check_level{check=\"persistence\"} 3\n"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace prodsafe::runtime_checks
