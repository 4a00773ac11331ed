#include "chaos/scenarios/worker_storm/fleet.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "prodsafe/redis/reply.hpp"
#include "prodsafe/retry/executor.hpp"
#include "prodsafe/retry/redis_window_store.hpp"

namespace prodsafe::chaos::storm {
namespace {

// Set while a job thread is inside record_failure(), so that the alert hook,
// which the breaker calls on that thread, knows which record decided it.
thread_local std::int64_t t_record_started_ns = 0;

}  // namespace

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch())
      .count();
}

breaker::CircuitBreakerOptions breaker_options() {
  return {.failure_threshold = kThreshold,
          .time_window = kBreakerWindow,
          .window_buckets = kBreakerBuckets,
          .break_duration = kBreak,
          .max_break_duration = kMaxBreak,
          .max_half_open_wait = kMaxHalfOpenWait,
          .staleness = milliseconds(500)};
}

std::string read_state(breaker::RedisBreakerStore& store, std::size_t type) {
  const breaker::BreakerRules rules{.failure_threshold = kThreshold,
                                    .time_window = kBreakerWindow,
                                    .window_buckets = kBreakerBuckets,
                                    .break_duration = kBreak,
                                    .max_break_duration = kMaxBreak,
                                    .max_half_open_wait = kMaxHalfOpenWait};
  try {
    return std::string(breaker::to_string(store.read(kJobTypes[type], rules).state));
  } catch (const std::exception& error) {
    return fmt::format("unreadable ({})", error.what());
  }
}

void Dependency::set_noise(std::uint64_t every) {
  std::lock_guard lock(mutex_);
  every_ = every;
  rate_ = 0;
}
void Dependency::set_failure_rate(double rate) {
  std::lock_guard lock(mutex_);
  every_ = 0;
  rate_ = rate;
}

void Dependency::call() {
  std::this_thread::sleep_for(milliseconds(1));
  std::lock_guard lock(mutex_);
  ++calls_;
  const bool fails =
      every_ > 0 ? calls_ % every_ == 0 : std::bernoulli_distribution(rate_)(random_);
  if (fails) throw std::runtime_error(fmt::format("{}: 503 Service Unavailable", name_));
}

void History::alert(AlertRecord record) {
  std::lock_guard lock(mutex_);
  alerts_.push_back(std::move(record));
}
void History::failure_recorded(FailureRecord record) {
  std::lock_guard lock(mutex_);
  failures_.push_back(record);
}
void History::error(std::string text) {
  std::lock_guard lock(mutex_);
  errors_.push_back(std::move(text));
}
std::vector<AlertRecord> History::alerts() const {
  std::lock_guard lock(mutex_);
  std::vector<AlertRecord> sorted = alerts_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const AlertRecord& a, const AlertRecord& b) { return a.at_ns < b.at_ns; });
  return sorted;
}
std::vector<FailureRecord> History::failures() const {
  std::lock_guard lock(mutex_);
  return failures_;
}
std::vector<std::string> History::errors() const {
  std::lock_guard lock(mutex_);
  return errors_;
}

std::pair<std::uint64_t, std::uint64_t> History::jobs_run_and_refused() const {
  std::uint64_t run = 0;
  std::uint64_t refused = 0;
  for (const auto& by_type : jobs) {
    for (const JobCounts& counts : by_type) {
      run += counts.run.load();
      refused += counts.refused.load();
    }
  }
  return {run, refused};
}

FleetProcess::FleetProcess(std::size_t index, const std::string& url, const redis::TlsOptions& tls,
                           const std::string& key_prefix, const Sizes& sizes, History& history,
                           Dependency& ledger, Dependency& mailer, std::uint64_t seed)
    : index_(index),
      history_(history),
      ledger_(ledger),
      mailer_(mailer),
      client_(std::make_shared<redis::Client>(
          url, redis::Options{.command_timeout = milliseconds(1000),
                              .pool_size = 3 * sizes.threads_per_type + 2,
                              .key_prefix = key_prefix,
                              .tls = tls})),
      hooks_(std::make_shared<alerts::AlertHooks>()),
      anomalies_({.high_retry_rate = 0.5,
                  .rate_window = 20,
                  .rate_min_windows = 10,
                  .long_window = milliseconds(3000),
                  .excessive_attempts = 4,
                  .metrics = &registry_}),
      tracker_(std::make_shared<retry::RedisRetryWindowStore>(client_),
               {.ttl = milliseconds(60000)}) {
  hooks_->add_log_hook([this](std::string_view event, std::string_view message,
                              const alerts::AlertContext& context) {
    history_.alert({.at_ns = now_ns(),
                    .event = std::string(event),
                    .job_type = context.job_type,
                    .state = context.state,
                    .previous = context.previous_state,
                    .failures = context.failure_count,
                    .record_started_ns = t_record_started_ns,
                    .message = std::string(message)});
  });
  auto store = std::make_shared<breaker::RedisBreakerStore>(client_);
  for (std::size_t type = 0; type < kJobTypes.size(); ++type) {
    breaker::CircuitBreakerOptions options = breaker_options();
    options.alert_hooks = hooks_;
    options.metrics = &registry_;
    breakers_[type] =
        std::make_unique<breaker::CircuitBreaker>(store, std::string(kJobTypes[type]), options);
    spikes_[type] = std::make_unique<retry::RetrySpikeDetector>(
        retry::SpikeOptions{.window = kSpikeWindow,
                            .slots_per_window = kSpikeSlots,
                            .baseline_windows = sizes.spike_baseline_windows,
                            .multiplier = 3.0,
                            .min_count = 5,
                            .cooldown = std::chrono::minutes(10),
                            .job_type = std::string(kJobTypes[type]),
                            .metrics = &registry_});
  }
  std::mt19937_64 random(seed);
  for (std::size_t type = 0; type < kJobTypes.size(); ++type) {
    for (std::size_t t = 0; t < sizes.threads_per_type; ++t)
      threads_.emplace_back([this, type, t, s = random()] { job_loop(type, t, s); });
  }
}

void FleetProcess::stop() {
  stopping_.store(true);
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void FleetProcess::job_loop(std::size_t type, std::size_t thread, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  auto next = SteadyClock::now();
  for (std::uint64_t n = 0; !stopping_.load(); ++n) {
    try {
      run_job(type, fmt::format("{}-p{}-t{}-{}", kJobTypes[type], index_, thread, n), random());
    } catch (const std::exception& error) {
      history_.error(fmt::format("process {} {}: {}", index_, kJobTypes[type], error.what()));
    }
    next = std::max(next + kJobInterval, SteadyClock::now());  // paced, no catch-up burst
    std::this_thread::sleep_until(next);
  }
}

void FleetProcess::run_job(std::size_t type, const std::string& job_id, std::uint64_t seed) {
  JobCounts& counts = history_.jobs[static_cast<std::size_t>(history_.phase.load())][type];
  breaker::CircuitBreaker& breaker = *breakers_[type];
  if (!breaker.can_retry().allowed) {
    ++counts.refused;
    return;
  }
  ++counts.run;
  const std::string name(kJobTypes[type]);
  retry::RetryPolicy policy{
      .max_attempts = kMaxAttempts,
      .base_delay = milliseconds(10),
      .max_delay = milliseconds(100),
      .allow_retry = breaker.gate(),
      .hooks = retry::observe({.spikes = spikes_[type].get(),
                               .on_spike =
                                   [this, name](const retry::SpikeAlert& alert) {
                                     alerts::AlertContext context;
                                     context.job_type = name;
                                     context.window = alert.window;
                                     context.timestamp = alert.at;
                                     hooks_->fire(kRetrySpike, alert.message, context);
                                   },
                               .tracker = &tracker_,
                               .anomalies = &anomalies_,
                               .on_anomaly =
                                   [this](const retry::Anomaly& anomaly) {
                                     alerts::AlertContext context;
                                     context.job_type = anomaly.job_type;
                                     context.state = std::string(to_string(anomaly.type));
                                     hooks_->fire(kRetryAnomaly, anomaly.message, context);
                                   },
                               .job_id = job_id,
                               .job_type = name}),
      .seed = seed,
      .job_type = name,
      .metrics = &registry_};
  try {
    retry::run(policy, [&] { attempt(type); });
    ++counts.succeeded;
  } catch (const std::exception&) {
    ++counts.failed;
  }
}

void FleetProcess::attempt(std::size_t type) {
  try {
    switch (type) {
      case kLedger:
        ledger_.call();
        break;
      case kPayments:
        post_to_ledger();
        break;
      default:
        mailer_.call();
        break;
    }
  } catch (...) {
    record_failure(type);
    throw;
  }
  breakers_[type]->record_success();
}

// A payment's call to the ledger service goes through the ledger's breaker.
void FleetProcess::post_to_ledger() {
  if (!breakers_[kLedger]->can_retry().allowed)
    throw std::runtime_error("ledger: refused by its circuit breaker");
  try {
    ledger_.call();
  } catch (...) {
    record_failure(kLedger);
    throw;
  }
  breakers_[kLedger]->record_success();
}

void FleetProcess::record_failure(std::size_t type) {
  t_record_started_ns = now_ns();
  breakers_[type]->record_failure();
  t_record_started_ns = 0;
  history_.failure_recorded({.type = type, .ended_ns = now_ns()});
}

TransitionFeed::TransitionFeed(const std::shared_ptr<redis::Client>& client)
    : connection_(client->endpoint(), client->options()) {
  breaker::RedisBreakerStore store(client);
  std::vector<std::string> channels;
  for (const std::string_view type : kJobTypes) {
    channels.push_back(store.channel(type));
    job_of_channel_[channels.back()] = std::string(type);
  }
  const std::vector<std::string_view> views(channels.begin(), channels.end());
  connection_.subscribe(views);
  thread_ = std::thread([this] { loop(); });
}

void TransitionFeed::stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}
std::map<std::pair<std::string, std::string>, std::size_t> TransitionFeed::counts() const {
  std::lock_guard lock(mutex_);
  return counts_;
}
std::string TransitionFeed::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

void TransitionFeed::loop() {
  try {
    for (;;) {
      const auto message = connection_.next_message(milliseconds(200));
      if (!message) {
        if (stopping_.load()) return;
        continue;
      }
      if (message->type() != redis::Reply::Type::kArray) continue;
      const auto& parts = message->array();
      if (parts.size() != 3 || parts[0].str() != "message") continue;
      const std::string& payload = parts[2].str();
      std::lock_guard lock(mutex_);
      ++counts_[{job_of_channel_[parts[1].str()], payload.substr(0, payload.find(':'))}];
    }
  } catch (const std::exception& error) {
    std::lock_guard lock(mutex_);
    error_ = error.what();
  }
}

CounterSeries fleet_counter(const std::vector<std::unique_ptr<FleetProcess>>& fleet,
                            std::string_view name) {
  std::map<std::vector<std::string>, double> sums;
  for (const auto& process : fleet) {
    process->registry().visit({.counter = [&](const metrics::Family<metrics::Counter>& family) {
      if (family.name() != name) return;
      family.for_each([&](const std::vector<std::string>& labels, const metrics::Counter& counter) {
        sums[labels] += counter.value();
      });
    }});
  }
  return sums;
}

}  // namespace prodsafe::chaos::storm
