// worker_storm: a fleet runs jobs of three types against simulated
// dependencies through the real resilience stack: a CircuitBreaker per job
// type on a RedisBreakerStore (the Redis under test, the trial's key prefix),
// retry::run with allow_retry = breaker.gate(), a RetrySpikeDetector per job
// type, a RetryAnomalyDetector and a RetryWindowTracker on the Redis window
// store, every alert (breaker transitions, spikes, anomalies) going through
// alerts::AlertHooks into a log with timestamps.
//
// The fleet (fleet.hpp, beside this file) is P simulated processes in this process
// sharing state only through Redis; its job types are "ledger", "payments"
// (posts to the ledger service through the ledger's breaker, so depends on
// it) and "notifications" (a mailer; depends on nothing). Phases:
//   baseline  every dependency fails 1 call in 200, evenly spaced: the noise
//             every fleet lives with, and deterministic, so that it cannot
//             page by chance (paced at most 40 jobs/s per thread, that is at
//             most 2-3 failures/s fleet-wide: far below 50 in 2 s, and below
//             5 retries per process per spike window);
//   storm     the ledger service fails 80 % of calls (seeded);
//   recovery  the ledger service is healthy; the mailer keeps its noise.
// Breakers, retries and spike detectors: see fleet.hpp.
//
// Invariants, and why they are the ones an operator relies on:
//   - no alert of any kind during the baseline: noise must not page;
//   - the ledger breaker opens within its threshold: fewer than 50 failures
//     were recorded fleet-wide before the one that opened it (failures the
//     store must have counted: recorded before the tripping record began,
//     inside the window), so a storm costs at most `threshold` failed calls;
//   - a retry spike is alerted within one spike window (+ one slot) of the
//     storm's start: the page arrives while the storm is news;
//   - anomalies (excessive attempts, high retry rate) are found during the
//     storm, and none during the baseline;
//   - the ledger breaker is CLOSED again within one longest break of the
//     storm's end, and payments, which depends on it, opens during the storm
//     (the cascade) and is CLOSED again within two longest breaks (its first
//     probe may fail while the ledger's break still runs), each + 750 ms for
//     pacing and scheduling on two busy cores; without recovery a storm
//     would outlive its cause;
//   - notifications, which does not depend on the ledger, never leaves
//     CLOSED and never alerts: a breaker isolates, it does not spread;
//   - one alert per fleet-wide transition: the alerts equal the transitions
//     the store published on pub/sub; and the metrics agree with the alerts:
//     prodsafe_breaker_transitions_total, prodsafe_retry_spikes_total and
//     prodsafe_retry_anomalies_total, summed over the fleet's registries.
// Measured: calls refused by the breakers, retries saved by the gate, jobs
// per phase, and the timeline.
//
// Sizes: quick 2 processes x 2 threads per job type, 3 s baseline, 3 s storm
// (about 9 s in all); full 3 x 2, 8 s and 8 s (about 19 s). Runs against an
// external --redis too (its keys are under the trial's prefix).
#include <algorithm>
#include <map>
#include <optional>
#include <span>
#include <thread>

#include <fmt/format.h>

#include "chaos/framework/scenario.hpp"
#include "chaos/scenarios/worker_storm/checks.hpp"
#include "chaos/scenarios/worker_storm/fleet.hpp"

namespace prodsafe::chaos::storm {
namespace {

constexpr double kStormFailureRate = 0.8;
constexpr std::uint64_t kNoiseEvery = 200;
// What scheduling on two busy cores may add to a bound (pacing, pub/sub, RTTs).
constexpr milliseconds kSlack{750};

// An invariant row that keeps its detail when it holds: the evidence (how
// many failures, how many ms) is what the row is for.
void verdict(ScenarioContext& context, std::string name, std::size_t violations,
             std::string detail) {
  Invariant row = held_unless(std::move(name), violations);
  row.detail = std::move(detail);
  context.add(std::move(row));
}

class StormRun {
 public:
  StormRun(ScenarioContext& context, const Sizes& sizes)
      : context_(context), sizes_(sizes), trial_(context.trial("storm")) {}

  void run() {
    Dependency ledger("ledger", context_.random()());
    Dependency mailer("mailer", context_.random()());
    ledger.set_noise(kNoiseEvery);
    mailer.set_noise(kNoiseEvery);
    auto client = context_.client(trial_);
    TransitionFeed feed(client);
    std::vector<std::unique_ptr<FleetProcess>> fleet;
    for (std::size_t p = 0; p < sizes_.processes; ++p) {
      fleet.push_back(std::make_unique<FleetProcess>(
          p, context_.redis_url(), context_.tls_for(context_.redis_url()), trial_.key_prefix,
          sizes_, history_, ledger, mailer, context_.random()()));
    }
    context_.note(fmt::format(
        "worker_storm: {} processes x {} threads per job type; {} ms baseline, {} ms storm "
        "(ledger fails {:.0f} %), then recovery",
        sizes_.processes, sizes_.threads_per_type, sizes_.baseline.count(), sizes_.storm.count(),
        kStormFailureRate * 100));
    begin_ns_ = now_ns();
    hold("baseline", begin_ns_ + sizes_.baseline.count() * 1'000'000);

    storm_ns_ = now_ns();
    history_.phase.store(kStorm);
    ledger.set_failure_rate(kStormFailureRate);
    hold("storm", storm_ns_ + sizes_.storm.count() * 1'000'000);

    calm_ns_ = now_ns();
    history_.phase.store(kRecovery);
    ledger.set_failure_rate(0);
    // Recovery: until both breakers are CLOSED in the store and have stayed
    // so for a spike window, or the longest bound (and a little) has passed.
    breaker::RedisBreakerStore store(client);
    const std::int64_t deadline = calm_ns_ + ms_to_ns(recovery_bound(kPayments) + kSlack);
    std::int64_t closed_since = 0;
    while (now_ns() < deadline) {
      const bool closed =
          read_state(store, kLedger) == "CLOSED" && read_state(store, kPayments) == "CLOSED";
      if (!closed) closed_since = 0;
      if (closed && closed_since == 0) closed_since = now_ns();
      if (closed && now_ns() - closed_since >= ms_to_ns(kSpikeWindow)) break;
      show_progress("recovery");
      std::this_thread::sleep_for(milliseconds(20));
    }
    end_ns_ = now_ns();
    for (auto& process : fleet) process->stop();
    for (std::size_t type = 0; type < kJobTypes.size(); ++type)
      final_states_[type] = read_state(store, type);
    feed.stop();
    check(fleet, feed);
  }

 private:
  // The longest a breaker may stay open after the storm: one longest break,
  // plus one more for each breaker it depends on (its probe may fail while
  // the other's break still runs).
  static milliseconds recovery_bound(std::size_t type) {
    return type == kPayments ? 2 * kMaxBreak : kMaxBreak;
  }

  // Lets the fleet run until `until_ns`, showing progress.
  void hold(std::string_view phase, std::int64_t until_ns) {
    while (now_ns() < until_ns) {
      show_progress(phase);
      std::this_thread::sleep_for(
          milliseconds(std::clamp<std::int64_t>(ms(until_ns - now_ns()), 1, 50)));
    }
  }

  void show_progress(std::string_view phase) {
    const auto [run, refused] = history_.jobs_run_and_refused();
    context_.progress(
        fmt::format("worker_storm {}: {} jobs run, {} refused by a breaker", phase, run, refused));
  }

  [[nodiscard]] std::string at(std::int64_t ns) const {
    return ns < storm_ns_  ? fmt::format("{} ms before the storm", ms(storm_ns_ - ns))
           : ns < calm_ns_ ? fmt::format("storm +{} ms", ms(ns - storm_ns_))
                           : fmt::format("recovery +{} ms", ms(ns - calm_ns_));
  }

  void check(const std::vector<std::unique_ptr<FleetProcess>>& fleet, const TransitionFeed& feed);
  void check_ledger_opened(std::span<const AlertRecord> alerts);
  void check_recovered(std::span<const AlertRecord> alerts, std::size_t type,
                       const std::string& name);
  void check_agreement(const std::vector<std::unique_ptr<FleetProcess>>& fleet,
                       std::span<const AlertRecord> alerts, const TransitionFeed& feed);
  void measure(const std::vector<std::unique_ptr<FleetProcess>>& fleet,
               std::span<const AlertRecord> alerts);

  ScenarioContext& context_;
  const Sizes sizes_;
  const Trial trial_;
  History history_;
  std::int64_t begin_ns_ = 0;
  std::int64_t storm_ns_ = 0;
  std::int64_t calm_ns_ = 0;
  std::int64_t end_ns_ = 0;
  std::array<std::string, 3> final_states_{};
  nlohmann::json timeline_ = nlohmann::json::object();
};

void StormRun::check(const std::vector<std::unique_ptr<FleetProcess>>& fleet,
                     const TransitionFeed& feed) {
  const std::vector<AlertRecord> alerts = history_.alerts();

  std::vector<std::string> early;
  for (const AlertRecord& alert : alerts) {
    if (alert.at_ns < storm_ns_)
      early.push_back(fmt::format("{} {} {} ({})", at(alert.at_ns), alert.event, alert.job_type,
                                  alert.message));
  }
  context_.check("baseline: no alert (breakers, spikes, anomalies)", early, 2);

  check_ledger_opened(alerts);

  const std::int64_t spike_bound_ns = ms_to_ns(kSpikeWindow + kSpikeWindow / kSpikeSlots);
  std::optional<AlertRecord> spike;
  for (const AlertRecord& alert : alerts) {
    if (alert.event == kRetrySpike && alert.job_type == kJobTypes[kLedger] &&
        alert.at_ns >= storm_ns_) {
      spike = alert;
      break;
    }
  }
  if (spike) timeline_["ledger_spike_ms"] = ms(spike->at_ns - storm_ns_);
  verdict(context_,
          fmt::format("ledger: spike alerted within one spike window ({} ms + a {} ms slot)",
                      kSpikeWindow.count(), (kSpikeWindow / kSpikeSlots).count()),
          spike && spike->at_ns - storm_ns_ <= spike_bound_ns ? 0 : 1,
          spike ? fmt::format("first spike alert at {}: {}", at(spike->at_ns), spike->message)
                : "no spike alert for ledger after the storm began");

  std::map<std::string, std::size_t> storm_anomalies;
  std::size_t baseline_anomalies = 0;
  for (const AlertRecord& alert : alerts) {
    if (alert.event != kRetryAnomaly) continue;
    if (alert.at_ns < storm_ns_) {
      ++baseline_anomalies;
    } else if (alert.at_ns < calm_ns_) {
      ++storm_anomalies[fmt::format("{} {}", alert.job_type, alert.state)];
    }
  }
  std::string found;
  for (const auto& [kind, count] : storm_anomalies)
    found += fmt::format("{}{} x{}", found.empty() ? "" : ", ", kind, count);
  verdict(context_, "anomalies: found during the storm, none in the baseline",
          baseline_anomalies + (storm_anomalies.empty() ? 1 : 0),
          fmt::format("{} in the baseline; storm: {}", baseline_anomalies,
                      found.empty() ? "none" : found));

  check_recovered(alerts, kLedger, "ledger");
  const BreakerStory payments = story_of(alerts, kJobTypes[kPayments]);
  const bool cascaded = payments.first_open && payments.first_open->at_ns >= storm_ns_ &&
                        payments.first_open->at_ns < calm_ns_;
  if (payments.first_open)
    timeline_["payments_open_ms"] = ms(payments.first_open->at_ns - storm_ns_);
  verdict(context_, "payments (depends on ledger): breaker opened in the storm", cascaded ? 0 : 1,
          payments.first_open ? fmt::format("opened at {}", at(payments.first_open->at_ns))
                              : "never opened");
  check_recovered(alerts, kPayments, "payments (depends on ledger)");

  std::vector<std::string> spread;
  for (const AlertRecord& alert : alerts) {
    if (alert.job_type == kJobTypes[kNotifications])
      spread.push_back(fmt::format("{} {} {}", at(alert.at_ns), alert.event, alert.message));
  }
  if (final_states_[kNotifications] != "CLOSED")
    spread.push_back("ends " + final_states_[kNotifications]);
  context_.check("notifications (independent): always CLOSED, no alert", spread, 2);

  check_agreement(fleet, alerts, feed);
  const std::vector<std::string> errors = history_.errors();
  context_.check("fleet threads ran without unexpected errors", errors, 2);
  measure(fleet, alerts);
}

void StormRun::check_ledger_opened(std::span<const AlertRecord> alerts) {
  const BreakerStory ledger = story_of(alerts, kJobTypes[kLedger]);
  const std::string name =
      fmt::format("ledger: breaker opened within its threshold ({} failures)", kThreshold);
  if (!ledger.first_open) {
    context_.check(name, 1, "the ledger breaker never opened");
    return;
  }
  const AlertRecord& open = *ledger.first_open;
  timeline_["ledger_open_ms"] = ms(open.at_ns - storm_ns_);
  if (open.record_started_ns == 0) {
    context_.check(name, 1, "it opened outside a record_failure() call");
    return;
  }
  // Failures the store had certainly counted when the tripping record ran:
  // recorded before it began, and inside its window (less two buckets, for
  // the bucket boundaries and Redis's clock).
  const std::int64_t window_start =
      open.record_started_ns - ms_to_ns(kBreakerWindow - 2 * (kBreakerWindow / kBreakerBuckets));
  std::size_t before = 0;
  for (const FailureRecord& failure : history_.failures()) {
    if (failure.type == kLedger && failure.ended_ns < open.record_started_ns &&
        failure.ended_ns > window_start)
      ++before;
  }
  verdict(context_, name, before + 1 > kThreshold ? before + 1 - kThreshold : 0,
          fmt::format("opened at {} by the failure after {} recorded ones (the store "
                      "counted {})",
                      at(open.at_ns), before, open.failures));
  timeline_["ledger_failures_before_open"] = before;
}

void StormRun::check_recovered(std::span<const AlertRecord> alerts, std::size_t type,
                               const std::string& name) {
  const milliseconds bound = recovery_bound(type) + kSlack;
  const BreakerStory story = story_of(alerts, kJobTypes[type]);
  std::string detail;
  std::size_t violations = 0;
  if (final_states_[type] != "CLOSED") {
    violations = 1;
    detail =
        fmt::format("still {} at recovery +{} ms", final_states_[type], ms(end_ns_ - calm_ns_));
  } else {
    const std::int64_t after =
        story.last_closed_ns ? std::max<std::int64_t>(0, *story.last_closed_ns - calm_ns_) : 0;
    timeline_[std::string(kJobTypes[type]) + "_closed_ms"] = ms(after);
    violations = after > ms_to_ns(bound) ? 1 : 0;
    detail = fmt::format("CLOSED at recovery +{} ms", ms(after));
  }
  verdict(context_,
          fmt::format("{}: breaker CLOSED again within {} ms of the storm", name, bound.count()),
          violations, detail);
}

void StormRun::check_agreement(const std::vector<std::unique_ptr<FleetProcess>>& fleet,
                               std::span<const AlertRecord> alerts, const TransitionFeed& feed) {
  std::map<std::pair<std::string, std::string>, std::size_t> alerted;  // (job type, state)
  CounterSeries alerted_series;                                        // as the metrics label them
  CounterSeries spikes_alerted;
  CounterSeries anomalies_alerted;
  for (const AlertRecord& alert : alerts) {
    if (is_transition(alert)) {
      ++alerted[{alert.job_type, alert.state}];
      alerted_series[{alert.job_type, lower(alert.state)}] += 1;
    } else if (alert.event == kRetrySpike) {
      spikes_alerted[{alert.job_type}] += 1;
    } else if (alert.event == kRetryAnomaly) {
      anomalies_alerted[{alert.job_type, lower(alert.state)}] += 1;
    }
  }

  std::vector<std::string> differ;
  auto published = feed.counts();
  if (!feed.error().empty()) differ.push_back("the feed failed: " + feed.error());
  for (const auto& [key, count] : alerted) published.try_emplace(key, 0);
  for (const auto& [key, count] : published) {
    const auto it = alerted.find(key);
    const std::size_t seen = it == alerted.end() ? 0 : it->second;
    if (seen != count)
      differ.push_back(
          fmt::format("{} -> {}: {} published, {} alerted", key.first, key.second, count, seen));
  }
  context_.check("one alert per fleet-wide transition (as published by the store)", differ, 3);

  std::vector<std::string> mismatched;
  compare_series("prodsafe_breaker_transitions_total",
                 fleet_counter(fleet, "prodsafe_breaker_transitions_total"), alerted_series,
                 mismatched);
  compare_series("prodsafe_retry_spikes_total", fleet_counter(fleet, "prodsafe_retry_spikes_total"),
                 spikes_alerted, mismatched);
  compare_series("prodsafe_retry_anomalies_total",
                 fleet_counter(fleet, "prodsafe_retry_anomalies_total"), anomalies_alerted,
                 mismatched);
  double transitions = 0;
  for (const auto& [labels, value] : alerted_series) transitions += value;
  context_.check("metrics agree with the alerts (transitions, spikes, anomalies)", mismatched, 3);
  timeline_["transitions_alerted"] = transitions;
}

void StormRun::measure(const std::vector<std::unique_ptr<FleetProcess>>& fleet,
                       std::span<const AlertRecord> alerts) {
  const auto rejections = fleet_counter(fleet, "prodsafe_breaker_rejections_total");
  const auto gave_up = fleet_counter(fleet, "prodsafe_retry_gave_up_total");
  const auto retries = fleet_counter(fleet, "prodsafe_retry_retries_total");
  const auto store_errors = fleet_counter(fleet, "prodsafe_breaker_store_errors_total");

  double refused_total = 0;
  std::string refused_detail;
  for (const std::string_view type : kJobTypes) {
    const double refused = series_value(rejections, {std::string(type)});
    refused_total += refused;
    refused_detail += fmt::format("{}{} {}", refused_detail.empty() ? "" : ", ", type, refused);
  }
  context_.measure("calls refused by the breakers", static_cast<std::size_t>(refused_total),
                   refused_detail + " (first attempts, retries and payments' ledger calls)");

  double saved_total = 0;
  std::string saved_detail;
  for (const std::string_view type : kJobTypes) {
    const double saved = series_value(gave_up, {std::string(type), "breaker"});
    saved_total += saved;
    saved_detail += fmt::format("{}{} {} (of {} retries made)", saved_detail.empty() ? "" : ", ",
                                type, saved, series_value(retries, {std::string(type)}));
  }
  context_.measure("retries saved (the breaker's gate stopped the loop)",
                   static_cast<std::size_t>(saved_total), saved_detail);

  for (std::size_t phase = 0; phase < kPhases.size(); ++phase) {
    std::uint64_t run = 0;
    std::string detail;
    for (std::size_t type = 0; type < kJobTypes.size(); ++type) {
      const JobCounts& counts = history_.jobs[phase][type];
      run += counts.run.load();
      detail += fmt::format("{}{} {} ok, {} failed, {} refused", detail.empty() ? "" : "; ",
                            kJobTypes[type], counts.succeeded.load(), counts.failed.load(),
                            counts.refused.load());
    }
    context_.measure(fmt::format("jobs started in the {}", kPhases[phase]), run, detail);
  }

  std::size_t transitions = 0;
  std::string story;
  for (const AlertRecord& alert : alerts) {
    if (!is_transition(alert) || alert.job_type == kJobTypes[kNotifications]) continue;
    ++transitions;
    if (transitions <= 6)
      story += fmt::format("{}{} {} at {}", story.empty() ? "" : "; ", alert.job_type, alert.state,
                           at(alert.at_ns));
  }
  double breaker_store_errors = 0;
  for (const auto& [labels, count] : store_errors) breaker_store_errors += count;
  context_.measure("breaker transitions", transitions,
                   fmt::format("{}{}; breaker store errors {}", story,
                               transitions > 6 ? "; ..." : "", breaker_store_errors));

  timeline_["processes"] = sizes_.processes;
  timeline_["threads_per_job_type"] = sizes_.threads_per_type;
  timeline_["baseline_ms"] = sizes_.baseline.count();
  timeline_["storm_ms"] = sizes_.storm.count();
  timeline_["recovery_ms"] = ms(end_ns_ - calm_ns_);
  timeline_["calls_refused"] = refused_total;
  timeline_["retries_saved"] = saved_total;
  timeline_["alerts"] = alerts.size();
  context_.result().details = timeline_;
}

void run(ScenarioContext& context) {
  const Sizes sizes = context.quick() ? Sizes{2, 2, milliseconds(3000), milliseconds(3000), 2}
                                      : Sizes{3, 2, milliseconds(8000), milliseconds(8000), 5};
  if (context.embedded()) context.start_redis();
  StormRun(context, sizes).run();
}

[[maybe_unused]] const bool registered = register_scenario(
    {"worker_storm",
     "a fleet's jobs through breakers, retries and detectors: baseline, an 80 % failure storm "
     "on a dependency that cascades, recovery; alerts on time, none in the baseline",
     run});

}  // namespace
}  // namespace prodsafe::chaos::storm
