// Every level of every check, from synthetic INFO and CONFIG answers (some
// cannot be produced by the Redis installed here: a version before 7.0, a
// server stuck loading, a failed background save).
#include "checks.hpp"

#include <gtest/gtest.h>

namespace prodsafe::runtime_checks {
namespace {

using std::chrono::microseconds;

ServerFacts facts(std::map<std::string, std::string, std::less<>> info,
                  std::optional<std::map<std::string, std::string>> config = std::nullopt) {
  ServerFacts result;
  result.info = redis::Info(std::move(info));
  result.config = std::move(config);
  if (!result.config) result.config_error = "ERR unknown command 'CONFIG'";
  return result;
}

// Rated by what a crash loses (issue 13): the default gate (--fail-at error)
// fails every setup that loses acknowledged claims when redis-server is
// killed (CRITICAL) or when the machine crashes with many seconds unsynced
// (ERROR); everysec's last second is a WARNING, an ERROR with strict_durability.
TEST(PersistenceCheckTest, LevelsByWhatACrashLoses) {
  const ValidatorOptions normal;
  const ValidatorOptions strict{.strict_durability = true};
  auto aof = [](const char* fsync) {
    return facts({{"aof_enabled", "1"}},
                 std::map<std::string, std::string>{{"appendfsync", fsync}, {"save", ""}});
  };
  EXPECT_EQ(check_persistence(aof("always"), normal).level, Level::kOk);
  EXPECT_EQ(check_persistence(aof("always"), strict).level, Level::kOk);
  const CheckResult everysec = check_persistence(aof("everysec"), normal);
  EXPECT_EQ(everysec.level, Level::kWarning);
  EXPECT_NE(everysec.message.find("1 s"), std::string::npos) << everysec.message;
  EXPECT_EQ(check_persistence(aof("everysec"), strict).level, Level::kError);
  const CheckResult no_fsync = check_persistence(aof("no"), normal);
  EXPECT_EQ(no_fsync.level, Level::kError);
  EXPECT_NE(no_fsync.message.find("30 s"), std::string::npos) << no_fsync.message;
  const auto rdb =
      facts({{"aof_enabled", "0"}}, std::map<std::string, std::string>{{"save", "3600 1"}});
  const CheckResult rdb_only = check_persistence(rdb, normal);
  EXPECT_EQ(rdb_only.level, Level::kCritical);
  EXPECT_NE(rdb_only.message.find("since the last snapshot"), std::string::npos)
      << rdb_only.message;
  const auto none = facts({{"aof_enabled", "0"}}, std::map<std::string, std::string>{{"save", ""}});
  const CheckResult critical = check_persistence(none, normal);
  EXPECT_EQ(critical.level, Level::kCritical);
  EXPECT_NE(critical.remediation.find("appendonly yes"), std::string::npos);
  // Without CONFIG: AOF on with a hidden fsync policy cannot be rated, a
  // warning that says so; AOF off loses claims whatever `save` says.
  const CheckResult unknown = check_persistence(facts({{"aof_enabled", "1"}}), normal);
  EXPECT_EQ(unknown.level, Level::kWarning);
  EXPECT_NE(unknown.message.find("cannot be verified"), std::string::npos) << unknown.message;
  EXPECT_EQ(check_persistence(facts({{"aof_enabled", "0"}}), normal).level, Level::kCritical);
  EXPECT_EQ(check_persistence(facts({}), normal).level, Level::kWarning);
}

// Where CONFIG is renamed, disabled or denied, CONFIG SET would fail too: the
// fix names redis.conf and the provider's console instead.
TEST(RemediationTest, SaysConfigSetOnlyWhereConfigAnswers) {
  const ValidatorOptions options;
  const std::map<std::string, std::string, std::less<>> info{{"aof_enabled", "0"},
                                                             {"maxmemory_policy", "allkeys-lru"},
                                                             {"maxmemory", "1000"},
                                                             {"used_memory", "990"},
                                                             {"total_system_memory", "0"}};
  const ServerFacts with_config =
      facts(info, std::map<std::string, std::string>{{"appendfsync", "everysec"}, {"save", ""}});
  const ServerFacts without_config = facts(info);
  for (const auto& check :
       {check_persistence(without_config, options), check_eviction_policy(without_config),
        check_memory_headroom(without_config, options)}) {
    EXPECT_NE(check.level, Level::kOk) << check.name;
    EXPECT_EQ(check.remediation.find("CONFIG SET"), std::string::npos)
        << check.name << ": " << check.remediation;
    EXPECT_NE(check.remediation.find("redis.conf"), std::string::npos)
        << check.name << ": " << check.remediation;
    EXPECT_NE(check.remediation.find("console"), std::string::npos)
        << check.name << ": " << check.remediation;
  }
  for (const auto& check :
       {check_persistence(with_config, options), check_eviction_policy(with_config),
        check_memory_headroom(with_config, options)}) {
    EXPECT_NE(check.remediation.find("CONFIG SET"), std::string::npos)
        << check.name << ": " << check.remediation;
  }
  const CheckResult hidden_fsync = check_persistence(facts({{"aof_enabled", "1"}}), options);
  EXPECT_EQ(hidden_fsync.remediation.find("CONFIG SET"), std::string::npos)
      << hidden_fsync.remediation;
}

TEST(PersistenceHealthCheckTest, FailedWritesAreCritical) {
  EXPECT_EQ(check_persistence_health(
                facts({{"rdb_last_bgsave_status", "ok"}, {"aof_last_write_status", "ok"}}))
                .level,
            Level::kOk);
  EXPECT_EQ(check_persistence_health(
                facts({{"rdb_last_bgsave_status", "err"}, {"aof_last_write_status", "ok"}}))
                .level,
            Level::kCritical);
  EXPECT_EQ(check_persistence_health(
                facts({{"rdb_last_bgsave_status", "ok"}, {"aof_last_write_status", "err"}}))
                .level,
            Level::kCritical);
}

TEST(EvictionCheckTest, Levels) {
  auto policy = [](const char* name, const char* limit) {
    return check_eviction_policy(facts({{"maxmemory_policy", name}, {"maxmemory", limit}})).level;
  };
  EXPECT_EQ(policy("noeviction", "1000000"), Level::kOk);
  EXPECT_EQ(policy("allkeys-lru", "0"), Level::kOk) << "no limit, nothing is evicted";
  EXPECT_EQ(policy("volatile-lru", "1000000"), Level::kError);
  EXPECT_EQ(policy("volatile-ttl", "1000000"), Level::kError);
  EXPECT_EQ(policy("volatile-lfu", "1000000"), Level::kError);
  EXPECT_EQ(policy("volatile-random", "1000000"), Level::kError);
  EXPECT_EQ(policy("allkeys-lru", "1000000"), Level::kCritical);
  EXPECT_EQ(policy("allkeys-lfu", "1000000"), Level::kCritical);
  EXPECT_EQ(policy("allkeys-random", "1000000"), Level::kCritical);
  EXPECT_EQ(policy("", "1000000"), Level::kWarning) << "some managed services report \"\"";
  EXPECT_EQ(policy("something-new", "1000000"), Level::kWarning);
}

TEST(MemoryCheckTest, HeadroomBands) {
  const ValidatorOptions options;
  auto level = [&](const char* used, const char* maxmemory, const char* system) {
    return check_memory_headroom(facts({{"used_memory", used},
                                        {"maxmemory", maxmemory},
                                        {"total_system_memory", system}}),
                                 options)
        .level;
  };
  EXPECT_EQ(level("700", "1000", "0"), Level::kOk);
  EXPECT_EQ(level("800", "1000", "0"), Level::kOk) << "exactly 20 % free";
  EXPECT_EQ(level("801", "1000", "0"), Level::kWarning);
  EXPECT_EQ(level("900", "1000", "0"), Level::kWarning) << "exactly 10 % free";
  EXPECT_EQ(level("901", "1000", "0"), Level::kError);
  EXPECT_EQ(level("951", "1000", "0"), Level::kCritical);
  EXPECT_EQ(level("2000", "1000", "0"), Level::kCritical);
  EXPECT_EQ(level("500", "0", "10000"), Level::kOk) << "no limit: measured against the machine";
  EXPECT_EQ(level("9600", "0", "10000"), Level::kCritical);
  EXPECT_EQ(level("500", "0", "0"), Level::kWarning) << "unverifiable";
}

// Without maxmemory, Redis's total_system_memory is the machine's even inside
// a container: when Redis's own cgroup limit is known (it runs on this
// machine), headroom is measured against the smaller of the two.
TEST(MemoryCheckTest, AKnownCgroupLimitReplacesTheMachinesMemory) {
  ServerFacts inside =
      facts({{"used_memory", "950"}, {"maxmemory", "0"}, {"total_system_memory", "100000"}});
  EXPECT_EQ(check_memory_headroom(inside, {}).level, Level::kOk) << "99 % of the machine free";
  inside.cgroup_memory = CgroupMemoryLimit{.bytes = 1000, .source = "/sys/fs/cgroup/x/memory.max"};
  const CheckResult limited = check_memory_headroom(inside, {});
  EXPECT_EQ(limited.level, Level::kError) << limited.observed;
  EXPECT_NE(limited.observed.find("cgroup"), std::string::npos) << limited.observed;
  EXPECT_NE(limited.remediation.find("maxmemory"), std::string::npos) << limited.remediation;
  // maxmemory, when set, is what Redis enforces first.
  inside.info = redis::Info(
      {{"used_memory", "900"}, {"maxmemory", "10000"}, {"total_system_memory", "100000"}});
  EXPECT_EQ(check_memory_headroom(inside, {}).level, Level::kOk);
  // A cgroup limit above the machine's memory changes nothing.
  ServerFacts loose =
      facts({{"used_memory", "950"}, {"maxmemory", "0"}, {"total_system_memory", "1000"}});
  loose.cgroup_memory = CgroupMemoryLimit{.bytes = 100000, .source = "memory.max"};
  const CheckResult machine = check_memory_headroom(loose, {});
  EXPECT_EQ(machine.level, Level::kError);
  EXPECT_NE(machine.observed.find("system memory"), std::string::npos) << machine.observed;
  // Unknown (a remote Redis): the text says what the number is.
  const CheckResult remote = check_memory_headroom(
      facts({{"used_memory", "10"}, {"maxmemory", "0"}, {"total_system_memory", "1000"}}), {});
  EXPECT_NE(remote.message.find("container"), std::string::npos) << remote.message;
}

TEST(RoleVersionLoadingTest, Levels) {
  EXPECT_EQ(check_role(facts({{"role", "master"}})).level, Level::kOk);
  const CheckResult replica =
      check_role(facts({{"role", "slave"}, {"master_host", "10.0.0.1"}, {"master_port", "6379"}}));
  EXPECT_EQ(replica.level, Level::kCritical);
  EXPECT_NE(replica.remediation.find("10.0.0.1:6379"), std::string::npos);
  EXPECT_EQ(check_version(facts({{"redis_version", "7.0.15"}})).level, Level::kOk);
  EXPECT_EQ(check_version(facts({{"redis_version", "7.2.4"}})).level, Level::kOk);
  EXPECT_EQ(check_version(facts({{"redis_version", "6.2.14"}})).level, Level::kError);
  EXPECT_EQ(check_version(facts({{"redis_version", "garbage"}})).level, Level::kWarning);
  EXPECT_EQ(check_loading(facts({{"loading", "0"}})).level, Level::kOk);
  EXPECT_EQ(check_loading(facts({{"loading", "1"}})).level, Level::kWarning);
}

TEST(LatencyCheckTest, P99AgainstTheThreshold) {
  ServerFacts fast = facts({});
  for (int i = 0; i < 100; ++i) fast.latency.push_back(microseconds(100));
  const ValidatorOptions options{.latency_p99_warning = microseconds(1000)};
  EXPECT_EQ(check_latency(fast, options).level, Level::kOk);
  ServerFacts tail = fast;
  tail.latency[0] = microseconds(5000);  // one slow sample in 100 is the p99
  tail.latency[1] = microseconds(5000);
  EXPECT_EQ(check_latency(tail, options).level, Level::kWarning);
  ServerFacts one_slow = fast;
  one_slow.latency[0] = microseconds(5000);  // only the max: under p99
  EXPECT_EQ(check_latency(one_slow, options).level, Level::kOk);
}

TEST(EvaluateTest, EveryCheckOnceAndLatencyOnlyWhenSampled) {
  const auto results = evaluate(facts({}), ValidatorOptions{});
  std::vector<std::string> names;
  for (const auto& result : results) names.push_back(result.name);
  EXPECT_EQ(names, (std::vector<std::string>{"persistence", "persistence_health", "eviction_policy",
                                             "memory_headroom", "role", "version", "loading"}));
}

TEST(LevelTest, NamesAndParsing) {
  EXPECT_EQ(to_string(Level::kCritical), "CRITICAL");
  EXPECT_EQ(parse_level("Warning"), Level::kWarning);
  EXPECT_EQ(parse_level("ok"), Level::kOk);
  EXPECT_EQ(parse_level("fatal"), std::nullopt);
  EXPECT_LT(Level::kWarning, Level::kError);
}

}  // namespace
}  // namespace prodsafe::runtime_checks
