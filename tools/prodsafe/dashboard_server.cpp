#include "dashboard_server.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <ctime>
#include <exception>
#include <iostream>
#include <mutex>
#include <thread>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "breaker_rows.hpp"
#include "dashboard_assets.hpp"
#include "effect_records.hpp"
#include "failure.hpp"
#include "http_server.hpp"
#include "prodsafe/breaker/redis_breaker_store.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/idempotency/effect_type.hpp"
#include "prodsafe/redis/client.hpp"
#include "prodsafe/redis/endpoint.hpp"

namespace prodsafe::cli {
namespace {

using metrics::detail::http_response;
using metrics::detail::HttpRequest;
using std::chrono::milliseconds;

constexpr std::string_view kJsonType = "application/json";
// Every response: never cached (the state is live), never sniffed, never
// framed by another site, no Referer leaking the token's page.
constexpr std::string_view kCommonHeaders =
    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n";
// The page loads its script and style from this server only and talks to it
// only: no inline script, no other origin.
constexpr std::string_view kPageHeaders =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'\r\n";
// Action bodies are small JSON objects.
constexpr std::size_t kMaxBodyBytes = 16 * 1024;

std::string json_response(int status, const nlohmann::json& body) {
  return http_response(status, kJsonType,
                       body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), false,
                       kCommonHeaders);
}

std::string json_error(int status, std::string_view message) {
  return json_response(status, {{"error", message}});
}

// Compares without stopping at the first difference, so the time taken does
// not tell an attacker how much of a guessed token was right.
// (Its length is not hidden.)
bool same_secret(std::string_view given, std::string_view secret) {
  if (given.size() != secret.size()) return false;
  unsigned difference = 0;
  for (std::size_t i = 0; i < given.size(); ++i) {
    difference |= static_cast<unsigned char>(given[i]) ^ static_cast<unsigned char>(secret[i]);
  }
  return difference == 0;
}

std::string utc_now() {
  return fmt::format(
      "{:%Y-%m-%dT%H:%M:%SZ}",
      fmt::gmtime(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now())));
}

}  // namespace

std::optional<std::pair<std::string, int>> parse_listen(std::string_view text) {
  std::string host;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const std::size_t close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    if (host.find(':') != std::string::npos) return std::nullopt;  // IPv6 needs brackets
    port_text = text.substr(colon + 1);
  }
  if (host.empty()) host = "127.0.0.1";
  int port = 0;
  const auto [stop, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || error != std::errc() || stop != port_text.data() + port_text.size() ||
      port < 0 || port > 65535) {
    return std::nullopt;
  }
  return std::make_pair(host, port);
}

bool is_loopback_host(std::string_view host) {
  if (host == "localhost") return true;
  const std::string text(host);
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

struct DashboardServer::Impl {
  explicit Impl(DashboardServerOptions options_in) : options(std::move(options_in)) {}

  void collect() noexcept;
  std::string handle(const HttpRequest& request);
  std::string state();
  std::string act(const HttpRequest& request);
  std::string breaker_action(const nlohmann::json& body, const HttpRequest& request);
  std::string clear_effect_action(const nlohmann::json& body, const HttpRequest& request);
  [[nodiscard]] bool host_allowed(const HttpRequest& request) const;
  void log_action(const HttpRequest& request, std::string_view what) const;

  const DashboardServerOptions options;
  std::shared_ptr<redis::Client> reader;  // the collector's
  std::shared_ptr<redis::Client> actor;   // the actions' (never waits behind a scan)
  std::unique_ptr<FleetView> view;
  std::atomic<int> port{0};  // set once the server listens

  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;                              // guarded by mutex
  std::shared_ptr<const nlohmann::json> latest{};     // guarded by mutex
  std::chrono::steady_clock::time_point latest_at{};  // guarded by mutex
  std::thread collector;
  std::unique_ptr<metrics::detail::HttpServer> server;
};

void DashboardServer::Impl::collect() noexcept {
  std::unique_lock lock(mutex);
  while (!stopping) {
    lock.unlock();
    std::shared_ptr<const nlohmann::json> document;
    try {
      document = std::make_shared<const nlohmann::json>(view->refresh());
    } catch (const std::exception& error) {  // out of memory: try again next time
      std::cerr << "prodsafe dashboard: refresh failed: " << error.what() << "\n";
    }
    lock.lock();
    if (document) {
      latest = std::move(document);
      latest_at = std::chrono::steady_clock::now();
    }
    wake.wait_for(lock, options.refresh, [this] { return stopping; });
  }
}

bool DashboardServer::Impl::host_allowed(const HttpRequest& request) const {
  if (options.allow_remote) return true;
  const auto host = request.header("host");
  if (!host) return true;  // HTTP/1.0 without Host: not a browser's request
  std::string_view name = *host;
  const std::string port_suffix = fmt::format(":{}", request.local_port);
  if (name.ends_with(port_suffix)) name.remove_suffix(port_suffix.size());
  if (name.starts_with('[') && name.ends_with(']')) name = name.substr(1, name.size() - 2);
  return is_loopback_host(name);
}

void DashboardServer::Impl::log_action(const HttpRequest& request, std::string_view what) const {
  std::cerr << fmt::format("{} prodsafe dashboard: action from {}: {}\n", utc_now(), request.peer,
                           what);
}

std::string DashboardServer::Impl::handle(const HttpRequest& request) {
  if (!host_allowed(request)) {
    return json_error(403,
                      "this dashboard answers only to a loopback Host (127.0.0.1, "
                      "localhost, [::1]); start it with --allow-remote to serve others");
  }
  const bool head_only = request.method == "HEAD";
  const bool get = request.method == "GET" || head_only;
  if (request.path == "/healthz" && get) {
    return http_response(200, "text/plain; charset=utf-8", "ok\n", head_only, kCommonHeaders);
  }
  for (const Asset& asset : dashboard_assets()) {
    if (request.path != asset.path) continue;
    if (!get) return json_error(405, "use GET");
    return http_response(200, asset.content_type, asset.body, head_only,
                         fmt::format("{}{}", kCommonHeaders, kPageHeaders));
  }
  if (!request.path.starts_with("/api/")) return json_error(404, "no such page");
  if (!options.token.empty()) {
    const auto authorization = request.header("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (!authorization || !authorization->starts_with(kBearer) ||
        !same_secret(authorization->substr(kBearer.size()), options.token)) {
      return http_response(401, kJsonType,
                           R"({"error":"a bearer token is needed: open the page as )"
                           R"(http://host:port/#token=TOKEN"})",
                           head_only,
                           fmt::format("{}WWW-Authenticate: Bearer\r\n", kCommonHeaders));
    }
  }
  if (request.path == "/api/state") {
    if (!get) return json_error(405, "use GET");
    return state();
  }
  if (request.path.starts_with("/api/actions/")) {
    if (request.method != "POST") return json_error(405, "use POST");
    return act(request);
  }
  return json_error(404, "no such API");
}

std::string DashboardServer::Impl::state() {
  std::shared_ptr<const nlohmann::json> document;
  std::chrono::steady_clock::time_point at;
  {
    std::lock_guard lock(mutex);
    document = latest;
    at = latest_at;
  }
  nlohmann::json out = document ? *document : nlohmann::json{{"loading", true}};
  out["age_ms"] =
      document
          ? std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - at).count()
          : 0;
  out["refresh_ms"] = options.refresh.count();
  out["actions_allowed"] = options.allow_actions;
  return json_response(200, out);
}

std::string DashboardServer::Impl::act(const HttpRequest& request) {
  if (!options.allow_actions) {
    return json_error(403, "actions are off: start the dashboard with --allow-actions");
  }
  const auto type = request.header("content-type");
  if (!type || !type->starts_with("application/json")) {
    return json_error(415, "send the action as a JSON body (Content-Type: application/json)");
  }
  // A browser names the page that sent it: only this server's own page acts.
  if (const auto origin = request.header("origin")) {
    const auto host = request.header("host");
    // https: the page behind a TLS-terminating proxy (--allow-remote).
    const bool own =
        host && (*origin == fmt::format("http://{}", *host) ||
                 (options.allow_remote && *origin == fmt::format("https://{}", *host)));
    if (!own) {
      return json_error(
          403, fmt::format("an action must come from this dashboard's page, not {}", *origin));
    }
  }
  nlohmann::json body;
  try {
    body = nlohmann::json::parse(request.body);
  } catch (const nlohmann::json::exception&) {
    return json_error(400, "the body is not JSON");
  }
  if (!body.is_object()) return json_error(400, "the body must be a JSON object");
  try {
    if (request.path == "/api/actions/breaker") return breaker_action(body, request);
    if (request.path == "/api/actions/clear-effect") return clear_effect_action(body, request);
  } catch (const nlohmann::json::exception&) {
    return json_error(400,
                      "a field has the wrong type (job_type, action, type, id: strings; "
                      "force: true or false)");
  } catch (const std::exception& error) {
    const Failure failure = failure_of(error);
    log_action(request, fmt::format("failed: {}", failure.message));
    return json_error(failure.exit_code == kExitUnreachable ? 503 : 500, failure.message);
  }
  return json_error(404, "no such action");
}

std::string DashboardServer::Impl::breaker_action(const nlohmann::json& body,
                                                  const HttpRequest& request) {
  const std::string job_type = body.value("job_type", std::string());
  const std::string action = body.value("action", std::string());
  if (const std::string problem = job_type_problem(job_type); !problem.empty()) {
    return json_error(400, problem);
  }
  const auto command = breaker_command_of(action);
  if (!command) return json_error(400, "action must be open, close, disable or reset");
  breaker::RedisBreakerStore store(actor);
  const std::string key = store.key(job_type);
  // Only the breakers the page lists: a name shown escaped (bytes that are
  // not UTF-8) must not force a new breaker under the escaped name.
  if (actor->command({"EXISTS", key}).integer() == 0) {
    return json_error(404, fmt::format("no circuit breaker for job type '{}' (no key {}); the "
                                       "dashboard acts on the breakers it lists (`prodsafe "
                                       "breaker` can force one that does not exist yet)",
                                       printable(job_type, 200), printable(key, 200)));
  }
  const breaker::Snapshot snapshot =
      store.control(job_type, *command, clearing_rules(*actor, key),
                    fmt::format("prodsafe dashboard ({})", request.peer));
  log_action(request, fmt::format("breaker {} {}: {} -> {}", action, job_type,
                                  breaker::to_string(snapshot.previous),
                                  breaker::to_string(snapshot.state)));
  return json_response(200, {{"job_type", job_type},
                             {"action", action},
                             {"previous", breaker::to_string(snapshot.previous)},
                             {"state", breaker::to_string(snapshot.state)},
                             {"transitioned", snapshot.transitioned}});
}

std::string DashboardServer::Impl::clear_effect_action(const nlohmann::json& body,
                                                       const HttpRequest& request) {
  const std::string type = body.value("type", std::string());
  const std::string id = body.value("id", std::string());
  const bool force = body.value("force", false);
  std::string key;
  try {
    key = actor->key(idempotency::effect_key(idempotency::EffectType(type), id));
  } catch (const InvalidArgument& error) {
    return json_error(400, error.what());
  }
  const std::vector<EffectRow> rows = read_effects(*actor, {key}, actor->key("effect:"));
  if (rows.empty()) return json_error(404, fmt::format("no effect record {}", printable(key, 200)));
  const EffectRow& row = rows.front();
  if (!force) {
    if (const auto why = clear_refusal(row, "\"force\"")) return json_error(409, *why);
  }
  const std::string about = effect_summary(row);
  const ClearOutcome outcome = clear_effect(*actor, row);
  if (outcome == ClearOutcome::kChanged) {
    return json_error(409, fmt::format("{} changed while it was being cleared (claimed, committed "
                                       "or recovered); nothing was deleted",
                                       printable(key, 200)));
  }
  const bool deleted = outcome == ClearOutcome::kDeleted;
  log_action(request,
             fmt::format("clear effect {}{} ({}): {}", printable(key, 200),
                         force ? " (forced)" : "", about, deleted ? "deleted" : "already gone"));
  return json_response(
      200, {{"key", json_bytes(key)}, {"deleted", deleted}, {"was", json_bytes(about)}});
}

DashboardServer::DashboardServer(DashboardServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  Impl& impl = *impl_;
  if (!impl.options.allow_remote && !is_loopback_host(impl.options.host)) {
    throw InvalidArgument(fmt::format(
        "{} is not a loopback address: the dashboard shows the fleet's state{} to whoever "
        "reaches it. Pass --allow-remote (and set a token) to serve it there",
        impl.options.host, impl.options.allow_actions ? " and acts on it" : ""));
  }
  impl.reader = ops_client(impl.options.ops);
  impl.actor = ops_client(impl.options.ops);
  FleetViewOptions view = impl.options.view;
  if (view.redacted_url.empty()) view.redacted_url = redis::redact_url(impl.options.ops.url);
  impl.view = std::make_unique<FleetView>(impl.reader, std::move(view));
  impl.server = std::make_unique<metrics::detail::HttpServer>(
      metrics::detail::HttpServerOptions{
          .host = impl.options.host, .port = impl.options.port, .max_body_bytes = kMaxBodyBytes},
      [&impl](const HttpRequest& request) { return impl.handle(request); });
  impl.port = impl.server->port();
  impl.collector = std::thread([&impl] { impl.collect(); });
}

DashboardServer::~DashboardServer() {
  impl_->server.reset();  // no request runs after this
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->collector.joinable()) impl_->collector.join();
}

int DashboardServer::port() const noexcept { return impl_->port; }

std::string DashboardServer::url() const {
  return metrics::detail::http_base_url(impl_->options.host, impl_->port) + "/";
}

}  // namespace prodsafe::cli
