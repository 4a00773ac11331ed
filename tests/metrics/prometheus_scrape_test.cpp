// A real Prometheus (Debian's /usr/bin/prometheus) scrapes a MetricsServer on
// loopback; what its query API answers must be exactly what the registry held.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "prodsafe/metrics/metrics_server.hpp"
#include "prodsafe/metrics/registry.hpp"

namespace prodsafe::metrics {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kPrometheus = "/usr/bin/prometheus";
constexpr const char* kJob = "prodsafe";
constexpr auto kStartDeadline = 60s;
constexpr auto kScrapeDeadline = 30s;
constexpr auto kStopDeadline = 10s;
constexpr auto kPollInterval = 50ms;
constexpr int kPortAttempts = 5;
// One of each character the text format must escape in a label value.
constexpr std::string_view kAwkwardSymbol = "ETH\"USD\\T\nX";

// A port nothing listens on right now (bind port 0, read it, close). Another
// process may take it before Prometheus binds it: the caller retries.
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Sample lines in a text exposition (neither comments nor blank).
std::size_t sample_lines(const std::string& exposition) {
  std::size_t samples = 0;
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] != '#') ++samples;
  }
  return samples;
}

double value_of(const Json& series) {
  return std::stod(series.at("value").at(1).get<std::string>());
}

bool any_series(const Json& result) { return !result.empty(); }

class PrometheusScrapeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access(kPrometheus, X_OK), 0)
        << kPrometheus << " is missing: run scripts/bootstrap (it installs the `prometheus` "
        << "package); this test needs a real Prometheus server";
    char dir[] = "/tmp/prodsafe-prometheus-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr) << "mkdtemp: " << std::strerror(errno);
    dir_ = dir;
  }

  // Runs even when the test failed or SetUp did.
  void TearDown() override {
    if (HasFailure() && pid_ > 0) {
      const auto targets = get("/api/v1/targets");
      std::cerr << "--- Prometheus /api/v1/targets ---\n"
                << (targets ? targets->body : "(no answer)") << "\n";
    }
    stop_prometheus();
    if (dir_.empty()) return;
    if (HasFailure()) {
      std::cerr << "--- Prometheus log (" << log_path().string() << ") ---\n"
                << read_text(log_path()) << "--- end of Prometheus log ---\n";
    }
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  fs::path log_path() const { return dir_ / "prometheus.log"; }

  // Starts Prometheus scraping 127.0.0.1:`target_port` every second and waits
  // until it is ready. A web port taken between free_loopback_port() and
  // Prometheus' bind is retried with another.
  void start_prometheus(int target_port) {
    std::ofstream(dir_ / "prometheus.yml")
        << "global:\n"
        << "  scrape_interval: 1s\n"
        << "  scrape_timeout: 1s\n"
        << "scrape_configs:\n"
        << "  - job_name: " << kJob << "\n"
        << "    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << target_port << "']\n";
    for (int attempt = 1; attempt <= kPortAttempts; ++attempt) {
      web_port_ = free_loopback_port();
      ASSERT_GT(web_port_, 0) << "no free loopback port: " << std::strerror(errno);
      std::error_code no_log_yet;
      const auto log_start = fs::file_size(log_path(), no_log_yet);
      ASSERT_NO_FATAL_FAILURE(spawn());
      const auto deadline = SteadyClock::now() + kStartDeadline;
      while (SteadyClock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          // This attempt's lines only: the log is shared by every attempt.
          const std::string log = read_text(log_path());
          const bool port_taken =
              log.find("address already in use", no_log_yet ? 0 : log_start) != std::string::npos;
          ASSERT_TRUE(port_taken) << "Prometheus exited while starting (wait status " << status
                                  << "); see its log below";
          break;  // try another port
        }
        const auto ready = get("/-/ready");
        if (ready && ready->status == 200) return;
        std::this_thread::sleep_for(kPollInterval);
      }
      ASSERT_EQ(pid_, -1)
          << "Prometheus was not ready within "
          << std::chrono::duration_cast<std::chrono::seconds>(kStartDeadline).count() << " s";
    }
    FAIL() << "Prometheus found its web port taken " << kPortAttempts << " times in a row";
  }

  // SIGTERM, then SIGKILL if it has not exited by the deadline; always reaped.
  void stop_prometheus() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = SteadyClock::now() + kStopDeadline;
    while (SteadyClock::now() < deadline) {
      const pid_t done = ::waitpid(pid_, nullptr, WNOHANG);
      if (done == pid_ || (done < 0 && errno != EINTR)) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(kPollInterval);
    }
    ADD_FAILURE() << "Prometheus ignored SIGTERM for "
                  << std::chrono::duration_cast<std::chrono::seconds>(kStopDeadline).count()
                  << " s; killing it";
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  httplib::Result get(const std::string& path, const httplib::Params& params = {}) {
    httplib::Client client("127.0.0.1", web_port_);
    client.set_connection_timeout(1s);
    client.set_read_timeout(5s);
    return client.Get(path, params, httplib::Headers{});
  }

  // The series of an instant query (an empty array when none). An API error
  // is a test failure: the query itself is wrong.
  Json query(const std::string& promql) {
    const auto response = get("/api/v1/query", {{"query", promql}});
    if (!response) {
      ADD_FAILURE() << "no answer from Prometheus to " << promql << ": "
                    << httplib::to_string(response.error());
      return Json::array();
    }
    const Json answer = Json::parse(response->body, nullptr, /*allow_exceptions=*/false);
    if (response->status != 200 || !answer.is_object() || answer.value("status", "") != "success" ||
        answer.value(Json::json_pointer("/data/resultType"), "") != "vector") {
      ADD_FAILURE() << "query " << promql << " answered " << response->status << ": "
                    << response->body;
      return Json::array();
    }
    return answer.at(Json::json_pointer("/data/result"));
  }

  // Polls `promql` until `done` holds for its result (by default: some series
  // is there, i.e. a scrape carrying it has landed), then returns the result.
  // The caller checks the values, so a wrong expectation fails at once rather
  // than at the deadline.
  Json wait_for(const std::string& promql,
                const std::function<bool(const Json&)>& done = any_series) {
    const bool failed_before = HasFailure();
    const auto deadline = SteadyClock::now() + kScrapeDeadline;
    Json result = query(promql);
    while (!done(result)) {
      if ((HasFailure() && !failed_before) || SteadyClock::now() >= deadline) {
        ADD_FAILURE() << "gave up waiting for " << promql << "; last result: " << result.dump();
        return result;
      }
      std::this_thread::sleep_for(kPollInterval);
      result = query(promql);
    }
    return result;
  }

  std::string selector(const std::string& metric, const std::string& matchers = "") const {
    return metric + "{job=\"" + kJob + "\"" + (matchers.empty() ? "" : "," + matchers) + "}";
  }

  fs::path dir_;
  int web_port_ = -1;
  pid_t pid_ = -1;

 private:
  // fork/exec with the log file as stdout and stderr. The child gets
  // PR_SET_PDEATHSIG, so it dies with the test even if the test crashes.
  void spawn() {
    std::vector<std::string> args = {
        kPrometheus,
        "--config.file=" + (dir_ / "prometheus.yml").string(),
        "--storage.tsdb.path=" + (dir_ / "data").string(),
        "--web.listen-address=127.0.0.1:" + std::to_string(web_port_),
    };
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int log_fd = ::open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ASSERT_GE(log_fd, 0) << "open " << log_path() << ": " << std::strerror(errno);
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Async-signal-safe calls only: the parent has threads (the MetricsServer).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
      ::execv(kPrometheus, argv.data());
      ::_exit(127);
    }
    const int fork_errno = errno;
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    ASSERT_GT(pid, 0) << "fork: " << std::strerror(fork_errno);
    pid_ = pid;
  }
};

TEST_F(PrometheusScrapeTest, PrometheusReadsBackExactlyWhatTheRegistryHolds) {
  MetricsCardinalityGuard guard;
  Registry registry(&guard);
  auto& orders =
      registry.counter("prodsafe_scrape_orders_total", "Orders placed.", {"symbol", "side"});
  orders.labels({"BTCUSDT", "buy"}).inc(3);
  orders.labels({kAwkwardSymbol, "sell"}).inc(2);
  auto& positions = registry.gauge("prodsafe_scrape_open_positions", "Open positions.");
  positions.labels({}).set(-2.5);
  auto& latency = registry.histogram("prodsafe_scrape_claim_duration_seconds", "Claim latency.",
                                     {"effect_type"}, {0.01, 0.1, 1});
  for (double v : {0.005, 0.05, 0.05, 0.5, 5.0}) latency.labels({"ORDER_PLACEMENT"}).observe(v);
  MetricsServer server(registry);
  ASSERT_NO_FATAL_FAILURE(start_prometheus(server.port()));

  // `up` is written after every scrape, failed or not: 1 only if Prometheus
  // accepted the whole page.
  const Json up = wait_for(selector("up"));
  ASSERT_EQ(up.size(), 1u) << up.dump();
  EXPECT_EQ(up[0]["metric"].value("instance", ""), "127.0.0.1:" + std::to_string(server.port()));
  ASSERT_EQ(value_of(up[0]), 1.0) << "the scrape failed; see the targets' lastError below";
  // Nothing on the page was dropped.
  const Json scraped = wait_for(selector("scrape_samples_scraped"));
  ASSERT_EQ(scraped.size(), 1u) << scraped.dump();
  EXPECT_EQ(value_of(scraped[0]), static_cast<double>(sample_lines(registry.serialize())));

  const std::string buy_selector =
      selector("prodsafe_scrape_orders_total", R"(symbol="BTCUSDT",side="buy")");
  const Json buy = wait_for(buy_selector);
  ASSERT_EQ(buy.size(), 1u) << buy.dump();
  EXPECT_EQ(buy[0]["metric"], Json({{"__name__", "prodsafe_scrape_orders_total"},
                                    {"job", kJob},
                                    {"instance", "127.0.0.1:" + std::to_string(server.port())},
                                    {"symbol", "BTCUSDT"},
                                    {"side", "buy"}}));
  EXPECT_EQ(value_of(buy[0]), 3.0);

  // The escaped label value comes back byte for byte: as a label of the
  // result, and as a PromQL matcher (Go escapes) that selects it.
  const Json sell = wait_for(selector("prodsafe_scrape_orders_total", R"(side="sell")"));
  ASSERT_EQ(sell.size(), 1u) << sell.dump();
  EXPECT_EQ(sell[0]["metric"].value("symbol", ""), kAwkwardSymbol) << sell.dump();
  EXPECT_EQ(value_of(sell[0]), 2.0);
  const Json matched =
      wait_for(selector("prodsafe_scrape_orders_total", R"(symbol="ETH\"USD\\T\nX")"));
  ASSERT_EQ(matched.size(), 1u) << matched.dump();
  EXPECT_EQ(matched[0]["metric"].value("side", ""), "sell");

  const Json gauge = wait_for(selector("prodsafe_scrape_open_positions"));
  ASSERT_EQ(gauge.size(), 1u) << gauge.dump();
  EXPECT_EQ(value_of(gauge[0]), -2.5);

  const Json count = wait_for(selector("prodsafe_scrape_claim_duration_seconds_count"));
  ASSERT_EQ(count.size(), 1u) << count.dump();
  EXPECT_EQ(value_of(count[0]), 5.0);
  const Json sum = wait_for(selector("prodsafe_scrape_claim_duration_seconds_sum"));
  ASSERT_EQ(sum.size(), 1u) << sum.dump();
  EXPECT_NEAR(value_of(sum[0]), 5.605, 1e-12);
  std::map<std::string, double> buckets;
  for (const Json& series : wait_for(selector("prodsafe_scrape_claim_duration_seconds_bucket"))) {
    EXPECT_EQ(series["metric"].value("effect_type", ""), "ORDER_PLACEMENT");
    buckets[series["metric"].value("le", "")] = value_of(series);
  }
  EXPECT_EQ(buckets,
            (std::map<std::string, double>{{"0.01", 1}, {"0.1", 3}, {"1", 4}, {"+Inf", 5}}));
  // The median (rank 2.5) falls in (0.01, 0.1], which holds ranks 2 and 3.
  const Json median = wait_for("histogram_quantile(0.5, " +
                               selector("prodsafe_scrape_claim_duration_seconds_bucket") + ")");
  ASSERT_EQ(median.size(), 1u) << median.dump();
  EXPECT_NEAR(value_of(median[0]), 0.01 + (0.1 - 0.01) * (2.5 - 1) / (3 - 1), 1e-12);

  // Later scrapes see the registry as it is now, new series included.
  orders.labels({"BTCUSDT", "buy"}).inc();
  orders.labels({"SOLUSDT", "buy"}).inc(7);
  positions.labels({}).set(12);
  const Json bought = wait_for(buy_selector, [](const Json& result) {
    return result.size() == 1 && value_of(result[0]) != 3.0;
  });
  ASSERT_EQ(bought.size(), 1u) << bought.dump();
  EXPECT_EQ(value_of(bought[0]), 4.0);
  // The same scrape carried the other changes.
  const Json sol =
      wait_for(selector("prodsafe_scrape_orders_total", R"(symbol="SOLUSDT",side="buy")"));
  ASSERT_EQ(sol.size(), 1u) << sol.dump();
  EXPECT_EQ(value_of(sol[0]), 7.0);
  const Json moved = wait_for(selector("prodsafe_scrape_open_positions"));
  ASSERT_EQ(moved.size(), 1u) << moved.dump();
  EXPECT_EQ(value_of(moved[0]), 12.0);
  const Json still_up = wait_for(selector("up"));
  ASSERT_EQ(still_up.size(), 1u) << still_up.dump();
  EXPECT_EQ(value_of(still_up[0]), 1.0);
}

}  // namespace
}  // namespace prodsafe::metrics
