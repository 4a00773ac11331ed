// The dashboard's HTTP API (DashboardServer) against a private redis-server:
// who may read it (token, Host), who may act through it (allow_actions,
// Content-Type, Origin), what a malformed action gets, what clearing an
// effect record refuses, and what the API says while Redis is gone.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dashboard_server.hpp"
#include "effect_records.hpp"
#include "prodsafe/breaker/circuit_breaker.hpp"
#include "prodsafe/breaker/redis_breaker_store.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"
#include "support/raw_http.hpp"
#include "support/redis_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using prodsafe::breaker::BreakerRules;
using prodsafe::breaker::RedisBreakerStore;
using prodsafe::breaker::State;
using prodsafe::cli::DashboardServer;
using prodsafe::cli::DashboardServerOptions;
using prodsafe::idempotency::RedisEffectStore;
using prodsafe::testing::eventually;
using prodsafe::testing::raw_exchange;
using prodsafe::testing::RawReply;
using prodsafe::testing::SteadyClock;

class DashboardApiTest : public prodsafe::testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    client_ = std::shared_ptr<prodsafe::redis::Client>(make_client());
  }

  DashboardServerOptions options() {
    DashboardServerOptions options{.ops = {.url = server().url()}, .refresh = 100ms};
    options.view.checks_every = 10min;
    return options;
  }
  void start(DashboardServerOptions options) {
    dashboard_ = std::make_unique<DashboardServer>(std::move(options));
  }
  int port() const { return dashboard_->port(); }
  std::string host() const { return "127.0.0.1:" + std::to_string(port()); }

  // A request with `headers` (each ending in "\r\n"); Host is the server's
  // unless `headers` names one.
  RawReply request(const std::string& method, const std::string& path,
                   const std::string& headers = "", const std::string& body = "") {
    std::string text = method + " " + path + " HTTP/1.1\r\n";
    if (headers.find("Host:") == std::string::npos) text += "Host: " + host() + "\r\n";
    text += headers;
    if (!body.empty() || method == "POST") {
      text += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    return raw_exchange(port(), text + "\r\n" + body);
  }
  RawReply act(const std::string& action, const std::string& body,
               const std::string& headers = "Content-Type: application/json\r\n") {
    return request("POST", "/api/actions/" + action, headers, body);
  }
  static nlohmann::json json(const RawReply& reply) {
    try {
      return nlohmann::json::parse(reply.body);
    } catch (const nlohmann::json::exception& error) {
      ADD_FAILURE() << "not JSON (" << error.what() << "): " << reply.raw;
      return {};
    }
  }
  // /api/state once a refresh has been read.
  nlohmann::json loaded_state(const std::string& headers = "") {
    nlohmann::json state;
    EXPECT_TRUE(eventually([&] {
      state = json(request("GET", "/api/state", headers));
      return !state.contains("loading");
    }));
    return state;
  }

  std::shared_ptr<prodsafe::redis::Client> client_;
  std::unique_ptr<DashboardServer> dashboard_;
};

// Everything written on stderr (fd 2) while it lives.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    saved_ = ::dup(2);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~StderrCapture() {
    restore();
    std::filesystem::remove(path_);
  }
  std::string text() {
    restore();
    std::ifstream in(path_);
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    std::cerr.flush();
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  std::string path_ =
      (std::filesystem::temp_directory_path() / ("dashboard-stderr-" + std::to_string(::getpid())))
          .string();
  int saved_ = -1;
};

TEST_F(DashboardApiTest, StateBeforeTheFirstRefreshSaysLoading) {
  server().pause();  // the first refresh waits for Redis
  start(options());
  const auto reply = request("GET", "/api/state");
  ASSERT_EQ(reply.status, 200) << reply.raw;
  EXPECT_EQ(reply.header("Content-Type"), "application/json");
  EXPECT_EQ(reply.header("Cache-Control"), "no-store");
  const auto state = json(reply);
  EXPECT_EQ(state["loading"], true);
  EXPECT_EQ(state["age_ms"], 0);
  EXPECT_EQ(state["refresh_ms"], 100);
  EXPECT_EQ(state["actions_allowed"], false);
  EXPECT_FALSE(state.contains("breakers"));
  server().resume();
  const auto loaded = loaded_state();
  EXPECT_EQ(loaded["redis"]["reachable"], true) << loaded.dump();
  EXPECT_TRUE(loaded["breakers"].is_array());
  EXPECT_EQ(loaded["effects"]["complete"], true);
}

TEST_F(DashboardApiTest, ThePageIsServedWithItsSecurityHeaders) {
  start(options());
  const auto page = request("GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page.header("Content-Security-Policy").find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(page.header("X-Frame-Options"), "DENY");
  EXPECT_NE(page.body.find("<script src=\"/dashboard.js\""), std::string::npos);
  EXPECT_EQ(request("GET", "/dashboard.js").header("Content-Type"),
            "text/javascript; charset=utf-8");
  EXPECT_EQ(request("POST", "/dashboard.js").status, 405);
  EXPECT_EQ(request("GET", "/nothing-here").status, 404);
  EXPECT_EQ(request("GET", "/api/nothing-here").status, 404);
  EXPECT_EQ(request("GET", "/healthz").body, "ok\n");
}

TEST_F(DashboardApiTest, TheApiNeedsTheBearerTokenWhenOneIsSet) {
  auto with_token = options();
  with_token.token = "s3cret-token";
  start(with_token);
  const auto none = request("GET", "/api/state");
  EXPECT_EQ(none.status, 401) << none.raw;
  EXPECT_EQ(none.header("WWW-Authenticate"), "Bearer");
  EXPECT_NE(json(none)["error"].get<std::string>().find("#token="), std::string::npos);
  for (const char* wrong : {"Bearer wrong", "Bearer s3cret-toke", "Bearer s3cret-token2",
                            "Basic s3cret-token", "s3cret-token", "Bearer "}) {
    EXPECT_EQ(request("GET", "/api/state", std::string("Authorization: ") + wrong + "\r\n").status,
              401)
        << wrong;
  }
  EXPECT_EQ(act("breaker", R"({"job_type":"pay","action":"open"})").status, 401);
  const auto state = loaded_state("Authorization: Bearer s3cret-token\r\n");
  EXPECT_EQ(state["redis"]["reachable"], true);
  // The page itself loads without the token (it reads it from its #token=).
  EXPECT_EQ(request("GET", "/").status, 200);
  EXPECT_EQ(request("GET", "/healthz").status, 200);
}

TEST_F(DashboardApiTest, AForeignHostIsRefusedAgainstDnsRebinding) {
  start(options());
  const std::string port_text = std::to_string(port());
  for (const std::string& host : std::vector<std::string>{
           "evil.example:" + port_text, "evil.example", "127.0.0.1.evil.example:" + port_text,
           "localhost.evil.example", "127.0.0.1:" + port_text + "0",
           "[::ffff:127.0.0.1]:" + port_text, "0.0.0.0:" + port_text}) {
    const auto reply = request("GET", "/api/state", "Host: " + host + "\r\n");
    EXPECT_EQ(reply.status, 403) << host << ": " << reply.raw;
    EXPECT_EQ(request("GET", "/", "Host: " + host + "\r\n").status, 403) << host;
  }
  for (const std::string& host :
       std::vector<std::string>{"127.0.0.1:" + port_text, "localhost:" + port_text,
                                "[::1]:" + port_text, "127.0.0.1", "localhost", "127.9.9.9"}) {
    EXPECT_EQ(request("GET", "/api/state", "Host: " + host + "\r\n").status, 200) << host;
  }
}

TEST_F(DashboardApiTest, AllowRemoteAnswersAnyHost) {
  auto remote = options();
  remote.allow_remote = true;
  start(remote);
  EXPECT_EQ(request("GET", "/api/state", "Host: evil.example\r\n").status, 200);
}

TEST_F(DashboardApiTest, ANonLoopbackAddressWithoutAllowRemoteIsRefused) {
  auto anywhere = options();
  anywhere.host = "0.0.0.0";
  EXPECT_THROW(DashboardServer{anywhere}, prodsafe::InvalidArgument);
}

// The page acts only on the breakers it lists: a name that has no breaker
// (one shown escaped because its bytes are not UTF-8, say) is not created.
TEST_F(DashboardApiTest, AnActionOnABreakerThatDoesNotExistIs404AndCreatesNothing) {
  auto acting = options();
  acting.allow_actions = true;
  start(acting);
  RedisBreakerStore store(client_);
  store.record("pay\xff", prodsafe::breaker::Outcome::kFailure, BreakerRules{});
  const auto escaped = act("breaker", R"({"job_type":"pay\\xff","action":"open"})");
  EXPECT_EQ(escaped.status, 404) << escaped.raw;
  EXPECT_EQ(client_->command({"EXISTS", "circuit:pay\\xff"}).integer(), 0);
  EXPECT_EQ(store.read("pay\xff", BreakerRules{}).state, State::kClosed);
}

// Behind a TLS-terminating proxy (--allow-remote), the page's origin is https.
TEST_F(DashboardApiTest, AnHttpsOriginOfThisHostIsThePagesOwn) {
  auto acting = options();
  acting.allow_actions = true;
  acting.allow_remote = true;
  start(acting);
  RedisBreakerStore(client_).record("pay", prodsafe::breaker::Outcome::kFailure, BreakerRules{});
  const auto proxied = act("breaker", R"({"job_type":"pay","action":"open"})",
                           "Content-Type: application/json\r\nHost: ops.example\r\n"
                           "Origin: https://ops.example\r\n");
  EXPECT_EQ(proxied.status, 200) << proxied.raw;
  EXPECT_EQ(act("breaker", R"({"job_type":"pay","action":"reset"})",
                "Content-Type: application/json\r\nHost: ops.example\r\n"
                "Origin: https://evil.example\r\n")
                .status,
            403);
}

TEST_F(DashboardApiTest, ActionsAreRefusedUnlessAllowed) {
  start(options());
  const auto reply = act("breaker", R"({"job_type":"pay","action":"open"})");
  EXPECT_EQ(reply.status, 403) << reply.raw;
  EXPECT_NE(json(reply)["error"].get<std::string>().find("--allow-actions"), std::string::npos);
  EXPECT_EQ(client_->command({"EXISTS", "circuit:pay"}).integer(), 0);
}

TEST_F(DashboardApiTest, AnActionNeedsAJsonBodyAndThisServersOrigin) {
  auto acting = options();
  acting.allow_actions = true;
  start(acting);
  RedisBreakerStore(client_).record("pay", prodsafe::breaker::Outcome::kFailure, BreakerRules{});
  const std::string body = R"({"job_type":"pay","action":"open"})";
  EXPECT_EQ(act("breaker", body, "").status, 415);
  EXPECT_EQ(act("breaker", body, "Content-Type: text/plain\r\n").status, 415);
  EXPECT_EQ(act("breaker", body, "Content-Type: application/x-www-form-urlencoded\r\n").status,
            415);
  for (const char* origin :
       {"http://evil.example", "null", "https://127.0.0.1", "http://127.0.0.1"}) {
    const auto reply =
        act("breaker", body,
            std::string("Content-Type: application/json\r\nOrigin: ") + origin + "\r\n");
    EXPECT_EQ(reply.status, 403) << origin << ": " << reply.raw;
  }
  EXPECT_EQ(client_->command({"HGET", "circuit:pay", "state"}).str(), "CLOSED");
  const auto own =
      act("breaker", body, "Content-Type: application/json\r\nOrigin: http://" + host() + "\r\n");
  EXPECT_EQ(own.status, 200) << own.raw;
  EXPECT_EQ(json(own)["state"], "FORCED_OPEN");
  EXPECT_EQ(request("GET", "/api/actions/breaker").status, 405);
}

TEST_F(DashboardApiTest, MalformedActionsGet400AndChangeNothing) {
  auto acting = options();
  acting.allow_actions = true;
  start(acting);
  for (const std::string& body : std::vector<std::string>{
           std::string("{"),
           std::string("[]"),
           std::string("\"open\""),
           std::string(""),
           std::string(R"({"job_type":5,"action":"open"})"),
           std::string(R"({"job_type":"pay","action":["open"]})"),
           std::string(R"({"job_type":null,"action":"open"})"),
           std::string(R"({"job_type":"pay","action":"explode"})"),
           std::string(R"({"job_type":"pay"})"),
           std::string(R"({"action":"open"})"),
           std::string(R"({"job_type":"a:b","action":"open"})"),
           std::string(R"({"job_type":"a\nb","action":"open"})"),
           std::string(R"({"job_type":"","action":"open"})"),
           std::string(R"({"job_type":")") + std::string(300, 'x') + R"(","action":"open"})",
           std::string("{\"job_type\":\"\xff\",\"action\":\"open\"}"),
       }) {
    const auto reply = act("breaker", body);
    EXPECT_EQ(reply.status, 400) << body << ": " << reply.raw;
    EXPECT_TRUE(json(reply).contains("error"));
  }
  for (const std::string& body : std::vector<std::string>{
           std::string(R"({"type":"NOT A TYPE","id":"1"})"),
           std::string(R"({"type":"a:b","id":"1"})"),
           std::string(R"({"type":"ORDER_PLACEMENT","id":""})"),
           std::string(R"({"type":"ORDER_PLACEMENT","id":7})"),
           std::string(R"({"type":"ORDER_PLACEMENT","id":"1","force":"yes"})"),
           std::string(R"({"id":"1"})"),
       }) {
    const auto reply = act("clear-effect", body);
    EXPECT_EQ(reply.status, 400) << body << ": " << reply.raw;
  }
  EXPECT_EQ(act("explode", R"({"job_type":"pay","action":"open"})").status, 404);
  EXPECT_EQ(client_->command({"DBSIZE"}).integer(), 0);
}

TEST_F(DashboardApiTest, BreakerActionsChangeTheStoreAndAreLogged) {
  auto acting = options();
  acting.allow_actions = true;
  start(acting);
  RedisBreakerStore(client_).record("pay", prodsafe::breaker::Outcome::kFailure, BreakerRules{});
  StderrCapture stderr_capture;
  const auto opened = act("breaker", R"({"job_type":"pay","action":"open"})");
  ASSERT_EQ(opened.status, 200) << opened.raw;
  EXPECT_EQ(json(opened)["previous"], "CLOSED");
  EXPECT_EQ(json(opened)["transitioned"], true);
  RedisBreakerStore store(client_);
  EXPECT_EQ(store.read("pay", BreakerRules{}).state, State::kForcedOpen);
  const auto reset = act("breaker", R"({"job_type":"pay","action":"reset"})");
  EXPECT_EQ(json(reset)["previous"], "FORCED_OPEN");
  EXPECT_EQ(store.read("pay", BreakerRules{}).state, State::kClosed);
  const std::string log = stderr_capture.text();
  EXPECT_NE(log.find("action from 127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find("breaker open pay: CLOSED -> FORCED_OPEN"), std::string::npos) << log;
  EXPECT_NE(log.find("breaker reset pay: FORCED_OPEN -> CLOSED"), std::string::npos) << log;
}

TEST_F(DashboardApiTest, ClearingAnEffectRecordRefusesALiveLeaseUnlessForced) {
  auto acting = options();
  acting.allow_actions = true;
  start(acting);
  RedisEffectStore store(client_);
  (void)store.claim("effect:ORDER_PLACEMENT:live", "", 1h, 2h);
  const auto refused = act("clear-effect", R"({"type":"ORDER_PLACEMENT","id":"live"})");
  EXPECT_EQ(refused.status, 409) << refused.raw;
  EXPECT_NE(json(refused)["error"].get<std::string>().find("\"force\""), std::string::npos);
  EXPECT_TRUE(store.inspect("effect:ORDER_PLACEMENT:live"));
  EXPECT_EQ(act("clear-effect", R"({"type":"ORDER_PLACEMENT","id":"live","force":false})").status,
            409);
  const auto forced = act("clear-effect", R"({"type":"ORDER_PLACEMENT","id":"live","force":true})");
  EXPECT_EQ(forced.status, 200) << forced.raw;
  EXPECT_EQ(json(forced)["deleted"], true);
  EXPECT_EQ(json(forced)["key"], "effect:ORDER_PLACEMENT:live");
  EXPECT_FALSE(store.inspect("effect:ORDER_PLACEMENT:live"));
}

TEST_F(DashboardApiTest, ClearingAFinishedOrAbandonedRecordNeedsNoForce) {
  auto acting = options();
  acting.allow_actions = true;
  start(acting);
  RedisEffectStore store(client_);
  const auto done = store.claim("effect:PNL_WRITE:done", "", 1h, 2h);
  (void)store.finish("effect:PNL_WRITE:done", done.holder(),
                     prodsafe::idempotency::FinalState::kCompleted, "result", "", 1h);
  (void)store.claim("effect:PNL_WRITE:orphan", "", 1ms, 2h);
  ASSERT_TRUE(eventually(
      [&] { return store.inspect("effect:PNL_WRITE:orphan")->lease_remaining.count() == 0; }));
  for (const char* id : {"done", "orphan"}) {
    const auto reply =
        act("clear-effect", std::string(R"({"type":"PNL_WRITE","id":")") + id + "\"}");
    EXPECT_EQ(reply.status, 200) << id << ": " << reply.raw;
    EXPECT_EQ(json(reply)["deleted"], true);
  }
  EXPECT_EQ(client_->command({"DBSIZE"}).integer(), 0);
}

TEST_F(DashboardApiTest, ClearingAnUnknownRecordIs404AndADamagedOneNeedsForce) {
  auto acting = options();
  acting.allow_actions = true;
  start(acting);
  EXPECT_EQ(act("clear-effect", R"({"type":"ORDER_PLACEMENT","id":"nobody"})").status, 404);
  client_->set("effect:ORDER_PLACEMENT:junk", "not a hash");
  EXPECT_EQ(act("clear-effect", R"({"type":"ORDER_PLACEMENT","id":"junk"})").status, 409);
  EXPECT_TRUE(client_->get("effect:ORDER_PLACEMENT:junk"));
  EXPECT_EQ(act("clear-effect", R"({"type":"ORDER_PLACEMENT","id":"junk","force":true})").status,
            200);
  EXPECT_FALSE(client_->get("effect:ORDER_PLACEMENT:junk"));
}

// The dashboard reads the record, then deletes it only if its state and
// token are unchanged: a worker's claim or commit in between wins.
TEST_F(DashboardApiTest, ARecordThatChangedSinceItWasReadIsNotCleared) {
  RedisEffectStore store(client_);
  (void)store.claim("effect:PNL_WRITE:race", "", 1ms, 2h);
  ASSERT_TRUE(eventually(
      [&] { return store.inspect("effect:PNL_WRITE:race")->lease_remaining.count() == 0; }));
  const auto rows = prodsafe::cli::read_effects(*client_, {"effect:PNL_WRITE:race"}, "effect:");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_FALSE(prodsafe::cli::clear_refusal(rows[0], "force"));
  // A worker recovers it now.
  const auto recovered = store.claim("effect:PNL_WRITE:race", "", 1h, 2h);
  EXPECT_EQ(prodsafe::cli::clear_effect(*client_, rows[0]), prodsafe::cli::ClearOutcome::kChanged);
  EXPECT_EQ(store.inspect("effect:PNL_WRITE:race")->token, recovered.token);
  client_->del("effect:PNL_WRITE:race");
  EXPECT_EQ(prodsafe::cli::clear_effect(*client_, rows[0]), prodsafe::cli::ClearOutcome::kGone);
}

TEST_F(DashboardApiTest, WithRedisGoneTheStateSaysUnreachableAndActionsGet503) {
  RedisBreakerStore(client_).control("pay", prodsafe::breaker::Command::kForceOpen, {});
  auto acting = options();
  acting.allow_actions = true;
  start(acting);
  const auto before = loaded_state();
  ASSERT_EQ(before["redis"]["reachable"], true);
  ASSERT_EQ(before["breakers"].size(), 1u);
  server().stop();
  nlohmann::json state;
  EXPECT_TRUE(eventually([&] {
    state = json(request("GET", "/api/state"));
    return state["redis"]["reachable"] == false;
  })) << state.dump();
  EXPECT_TRUE(state["redis"]["error"].is_string());
  // No stale figures shown as current.
  EXPECT_FALSE(state.contains("breakers")) << state.dump();
  EXPECT_FALSE(state.contains("effects"));
  EXPECT_EQ(act("breaker", R"({"job_type":"pay","action":"close"})").status, 503);
  EXPECT_EQ(act("clear-effect", R"({"type":"PNL_WRITE","id":"1"})").status, 503);
  server().restart();
  EXPECT_TRUE(eventually([&] {
    state = json(request("GET", "/api/state"));
    return state["redis"]["reachable"] == true;
  })) << state.dump();
}

// An action runs on the HTTP server's thread: against a Redis that hangs it
// waits for the client's timeouts (2 s), then answers 503; a page's state
// request meanwhile waits behind it, no longer.
TEST_F(DashboardApiTest, AnActionAgainstAHungRedisAnswers503WithinTheClientTimeouts) {
  auto acting = options();
  acting.allow_actions = true;
  start(acting);
  ASSERT_EQ(loaded_state()["redis"]["reachable"], true);
  server().pause();
  const auto started = SteadyClock::now();
  std::thread poller([&] {
    std::this_thread::sleep_for(100ms);  // behind the action
    const auto reply = request("GET", "/api/state");
    EXPECT_EQ(reply.status, 200) << reply.raw;
    EXPECT_LT(SteadyClock::now() - started, 5s);
  });
  const auto reply = act("breaker", R"({"job_type":"pay","action":"open"})");
  const auto took = SteadyClock::now() - started;
  poller.join();
  server().resume();
  EXPECT_EQ(reply.status, 503) << reply.raw;
  EXPECT_LT(took, 5s);
  EXPECT_GE(took, 1s) << "the action did not wait for Redis";
}

TEST_F(DashboardApiTest, HeadOfTheStateSendsNoBody) {
  start(options());
  (void)loaded_state();
  const auto reply = request("HEAD", "/api/state");
  EXPECT_EQ(reply.status, 200) << reply.raw;
  EXPECT_FALSE(reply.header("Content-Length").empty());
  EXPECT_EQ(reply.body, "");
  const auto missing = request("HEAD", "/api/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, "");
}

}  // namespace
