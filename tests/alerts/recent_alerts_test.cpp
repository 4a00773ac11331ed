// read_recent_alerts against a real redis-server: it decodes what
// RedisAlertStream wrote, reports entries it cannot decode in place, and
// refuses a key that is not a stream.
#include "prodsafe/alerts/recent_alerts.hpp"

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "alert_stream_test_support.hpp"
#include "prodsafe/alerts/redis_alert_stream.hpp"
#include "prodsafe/core/error.hpp"

namespace prodsafe::alerts {
namespace {

using namespace std::chrono_literals;
using testing::AlertStreamTest;

class RecentAlertsTest : public AlertStreamTest {
 protected:
  // Writes `alerts` through a RedisAlertStream, in order.
  void write(const std::vector<StoredAlert>& alerts, const redis::Options& options) {
    auto stream = std::make_shared<RedisAlertStream>(shared_client(options),
                                                     RedisAlertStreamOptions{.metrics = &registry});
    for (const StoredAlert& alert : alerts) {
      ASSERT_TRUE(stream->append(alert.event_type, alert.message, alert.context));
    }
    ASSERT_TRUE(stream->flush(5s));
    ASSERT_EQ(stream->stats().written, alerts.size());
  }

  // XADD of raw field, value pairs to the default stream.
  std::string add_raw(std::vector<std::string> fields) {
    std::vector<std::string> args{"XADD", "alerts:recent", "*"};
    args.insert(args.end(), fields.begin(), fields.end());
    return client->command(args).str();
  }
};

void expect_same(const StoredAlert& read, const StoredAlert& written) {
  EXPECT_FALSE(read.damaged()) << read.damage;
  EXPECT_EQ(read.event_type, written.event_type);
  EXPECT_EQ(read.message, written.message);
  const AlertContext& got = read.context;
  const AlertContext& want = written.context;
  EXPECT_EQ(got.job_type, want.job_type);
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.previous_state, want.previous_state);
  EXPECT_EQ(got.failure_count, want.failure_count);
  EXPECT_EQ(got.threshold, want.threshold);
  EXPECT_EQ(got.window, want.window);
  EXPECT_EQ(got.timestamp, want.timestamp);
  EXPECT_EQ(got.instance, want.instance);
  EXPECT_EQ(got.extra, want.extra);
  EXPECT_TRUE(read.fields.empty());
}

TEST_F(RecentAlertsTest, DecodesWhatTheWriterWroteNewestFirst) {
  const std::vector<StoredAlert> written{
      {.event_type = std::string(kCircuitOpened),
       .message = std::string("opened \0\xfe\n", 10),
       .context = {.job_type = "orders",
                   .state = "OPEN",
                   .previous_state = "CLOSED",
                   .failure_count = 18446744073709551615u,
                   .threshold = 3,
                   .window = 60000ms,
                   .timestamp = std::chrono::system_clock::time_point(1767225600123ms),
                   .instance = "worker-3:4121",
                   .extra = {{"trips", "2"}, {"", "empty name"}, {"extra.nested", "x"}}}},
      {.event_type = "retry_anomaly",
       .message = "",
       .context = {.window = -5ms,
                   .timestamp = std::chrono::system_clock::time_point(-1000ms),
                   .instance = "w:1"}},
      {.event_type = "",
       .message = "third",
       .context = {.timestamp = std::chrono::system_clock::time_point(5ms), .instance = "w:2"}},
  };
  write(written, short_timeouts());

  const auto all = read_recent_alerts(*client, 10);
  ASSERT_EQ(all.size(), 3u);
  expect_same(all[0], written[2]);
  expect_same(all[1], written[1]);
  expect_same(all[2], written[0]);
  EXPECT_GT(all[0].id, all[2].id);
  EXPECT_NE(all[2].id.find('-'), std::string::npos) << all[2].id;

  const auto newest = read_recent_alerts(*client, 2);
  ASSERT_EQ(newest.size(), 2u);
  EXPECT_EQ(newest[0].message, "third");
  EXPECT_EQ(newest[1].event_type, "retry_anomaly");
}

TEST_F(RecentAlertsTest, AMissingStreamOrACountOfZeroGivesNothing) {
  EXPECT_TRUE(read_recent_alerts(*client, 10).empty());
  write({{.event_type = "a", .message = "m"}}, short_timeouts());
  EXPECT_TRUE(read_recent_alerts(*client, 0).empty());
  EXPECT_EQ(read_recent_alerts(*client, 1).size(), 1u);
  EXPECT_THROW((void)read_recent_alerts(*client, 1, ""), InvalidArgument);
}

TEST_F(RecentAlertsTest, TheKeyPrefixAndTheNameAreHonoured) {
  redis::Options prefixed = short_timeouts();
  prefixed.key_prefix = "tenant-a:";
  write({{.event_type = "a", .message = "tenant a's"}}, prefixed);
  auto tenant = shared_client(prefixed);
  ASSERT_EQ(read_recent_alerts(*tenant, 5).size(), 1u);
  EXPECT_EQ(read_recent_alerts(*tenant, 5)[0].message, "tenant a's");
  EXPECT_TRUE(read_recent_alerts(*client, 5).empty()) << "another prefix, another stream";
  EXPECT_TRUE(read_recent_alerts(*tenant, 5, "ops:alerts").empty());
}

TEST_F(RecentAlertsTest, DamagedEntriesAreReportedInPlaceWithTheirFields) {
  struct Case {
    std::vector<std::string> fields;
    std::string damage;  // a part of the expected message
  };
  const std::vector<Case> cases{
      {{"message", "m", "at_ms", "1"}, "no 'type' field"},
      {{"type", "t", "at_ms", "1"}, "no 'message' field"},
      {{"type", "t", "message", "m"}, "no 'at_ms' field"},
      {{"type", "t", "message", "m", "at_ms", "yesterday"}, "at_ms 'yesterday' is not a time"},
      {{"type", "t", "message", "m", "at_ms", "99999999999999999"}, "at_ms '99999999999999999'"},
      {{"type", "t", "message", "m", "at_ms", " 1"}, "at_ms ' 1'"},
      {{"type", "t", "message", "m", "at_ms", "1", "failure_count", "-1"},
       "failure_count '-1' is not an unsigned integer"},
      {{"type", "t", "message", "m", "at_ms", "1", "threshold", "1e3"}, "threshold '1e3'"},
      {{"type", "t", "message", "m", "at_ms", "1", "window_ms", "\x01\xff"},
       "window_ms '\\x01\\xff' is not an integer"},
      {{"type", "t", "message", "m", "at_ms", "1", "type", "again"}, "field 'type' appears twice"},
      {{"type", "t", "message", "m", "at_ms", "1", "extra.x", "1", "x", "2"},
       "extra field 'x' appears twice"},
  };
  add_raw({"type", "first", "message", "good", "at_ms", "7"});
  for (const Case& c : cases) add_raw(c.fields);
  // A field this reader does not know is kept, not damage.
  add_raw({"type", "last", "message", "good", "at_ms", "8", "severity", "page"});

  const auto alerts = read_recent_alerts(*client, 100);
  ASSERT_EQ(alerts.size(), cases.size() + 2);
  EXPECT_FALSE(alerts.front().damaged()) << alerts.front().damage;
  EXPECT_EQ(alerts.front().event_type, "last");
  EXPECT_EQ(alerts.front().context.extra.at("severity"), "page");
  EXPECT_FALSE(alerts.back().damaged()) << alerts.back().damage;
  EXPECT_EQ(alerts.back().context.timestamp, std::chrono::system_clock::time_point(7ms));
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const StoredAlert& alert = alerts[cases.size() - i];  // newest first
    const Case& c = cases[i];
    EXPECT_TRUE(alert.damaged()) << i;
    EXPECT_NE(alert.damage.find(c.damage), std::string::npos) << i << ": " << alert.damage;
    EXPECT_FALSE(alert.id.empty());
    EXPECT_TRUE(alert.event_type.empty() && alert.message.empty()) << "only id, damage, fields";
    ASSERT_EQ(alert.fields.size() * 2, c.fields.size()) << i;
    for (std::size_t f = 0; f < alert.fields.size(); ++f) {
      EXPECT_EQ(alert.fields[f].first, c.fields[2 * f]);
      EXPECT_EQ(alert.fields[f].second, c.fields[2 * f + 1]);
    }
  }
}

TEST_F(RecentAlertsTest, AKeyThatIsNotAStreamIsADecodeErrorNamingIt) {
  for (const auto& make : std::vector<std::vector<std::string>>{
           {"SET", "alerts:recent", "garbage"}, {"HSET", "alerts:recent", "type", "x"}}) {
    client->command({"DEL", "alerts:recent"});
    client->command(make);
    try {
      (void)read_recent_alerts(*client, 10);
      ADD_FAILURE() << "no exception for " << make[0];
    } catch (const DecodeError& error) {
      const std::string what = error.what();
      EXPECT_NE(what.find("'alerts:recent'"), std::string::npos) << what;
      EXPECT_NE(what.find("delete the key"), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace prodsafe::alerts
