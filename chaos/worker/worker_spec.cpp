// WorkerSpec and WorkerStats as JSON, and the request plan a spec describes.
#include <algorithm>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "chaos/history/checker.hpp"
#include "chaos/worker/worker.hpp"

namespace prodsafe::chaos {
namespace {

using nlohmann::json;

template <class T>
void read(const json& from, const char* key, T& field) {
  if (const auto it = from.find(key); it != from.end()) it->get_to(field);
}

void read_ms(const json& from, const std::string& key, milliseconds& field) {
  if (const auto it = from.find(key + "_ms"); it != from.end())
    field = milliseconds(it->get<std::int64_t>());
}

json tls_json(const redis::TlsOptions& tls) {
  return json{{"enabled", tls.enabled},        {"ca_file", tls.ca_file},   {"ca_dir", tls.ca_dir},
              {"cert_file", tls.cert_file},    {"key_file", tls.key_file}, {"sni", tls.sni},
              {"verify_peer", tls.verify_peer}};
}

void read_tls(const json& from, redis::TlsOptions& tls) {
  const auto it = from.find("tls");
  if (it == from.end()) return;
  read(*it, "enabled", tls.enabled);
  read(*it, "ca_file", tls.ca_file);
  read(*it, "ca_dir", tls.ca_dir);
  read(*it, "cert_file", tls.cert_file);
  read(*it, "key_file", tls.key_file);
  read(*it, "sni", tls.sni);
  read(*it, "verify_peer", tls.verify_peer);
}

}  // namespace

void to_json(json& out, const WorkerSpec& spec) {
  out = json{{"name", spec.name},
             {"redis_url", spec.redis_url},
             {"tls", tls_json(spec.tls)},
             {"key_prefix", spec.key_prefix},
             {"effect_type", spec.effect_type},
             {"op_pattern", spec.op_pattern},
             {"op_first", spec.op_first},
             {"op_count", spec.op_count},
             {"partition_count", spec.partition_count},
             {"partition_index", spec.partition_index},
             {"repeat", spec.repeat},
             {"shuffle", spec.shuffle},
             {"seed", spec.seed},
             {"start_at_steady_ns", spec.start_at_steady_ns},
             {"burst_size", spec.burst_size},
             {"burst_interval_ms", spec.burst_interval.count()},
             {"request_gap_ms", spec.request_gap.count()},
             {"effect_before_ledger_ms", spec.effect_before_ledger.count()},
             {"effect_after_ledger_ms", spec.effect_after_ledger.count()},
             {"ttl_ms", spec.ttl.count()},
             {"lease_ms", spec.lease.count()},
             {"renew_leases", spec.renew_leases},
             {"wait_in_progress", spec.wait_in_progress},
             {"wait_timeout_ms", spec.wait_timeout.count()},
             {"wait_poll_max_ms", spec.wait_poll_max.count()},
             {"journal_directory", spec.journal_directory},
             {"wait_replicas", spec.wait_replicas},
             {"command_timeout_ms", spec.command_timeout.count()},
             {"connect_timeout_ms", spec.connect_timeout.count()},
             {"pool_checkout_timeout_ms", spec.pool_checkout_timeout.count()},
             {"reconnect_backoff_max_ms", spec.reconnect_backoff_max.count()},
             {"retry_backoff_initial_ms", spec.retry_backoff_initial.count()},
             {"retry_backoff_max_ms", spec.retry_backoff_max.count()},
             {"op_deadline_ms", spec.op_deadline.count()},
             {"exit_flush_deadline_ms", spec.exit_flush_deadline.count()},
             {"record_answers", spec.record_answers},
             {"ledger_directory", spec.ledger_directory},
             {"files_directory", spec.files_directory},
             {"break_guard", spec.break_guard},
             {"parent_pid", spec.parent_pid}};
}

void from_json(const json& in, WorkerSpec& spec) {
  read(in, "name", spec.name);
  read(in, "redis_url", spec.redis_url);
  read_tls(in, spec.tls);
  read(in, "key_prefix", spec.key_prefix);
  read(in, "effect_type", spec.effect_type);
  read(in, "op_pattern", spec.op_pattern);
  read(in, "op_first", spec.op_first);
  read(in, "op_count", spec.op_count);
  read(in, "partition_count", spec.partition_count);
  read(in, "partition_index", spec.partition_index);
  read(in, "repeat", spec.repeat);
  read(in, "shuffle", spec.shuffle);
  read(in, "seed", spec.seed);
  read(in, "start_at_steady_ns", spec.start_at_steady_ns);
  read(in, "burst_size", spec.burst_size);
  read_ms(in, "burst_interval", spec.burst_interval);
  read_ms(in, "request_gap", spec.request_gap);
  read_ms(in, "effect_before_ledger", spec.effect_before_ledger);
  read_ms(in, "effect_after_ledger", spec.effect_after_ledger);
  read_ms(in, "ttl", spec.ttl);
  read_ms(in, "lease", spec.lease);
  read(in, "renew_leases", spec.renew_leases);
  read(in, "wait_in_progress", spec.wait_in_progress);
  read_ms(in, "wait_timeout", spec.wait_timeout);
  read_ms(in, "wait_poll_max", spec.wait_poll_max);
  read(in, "journal_directory", spec.journal_directory);
  read(in, "wait_replicas", spec.wait_replicas);
  read_ms(in, "command_timeout", spec.command_timeout);
  read_ms(in, "connect_timeout", spec.connect_timeout);
  read_ms(in, "pool_checkout_timeout", spec.pool_checkout_timeout);
  read_ms(in, "reconnect_backoff_max", spec.reconnect_backoff_max);
  read_ms(in, "retry_backoff_initial", spec.retry_backoff_initial);
  read_ms(in, "retry_backoff_max", spec.retry_backoff_max);
  read_ms(in, "op_deadline", spec.op_deadline);
  read_ms(in, "exit_flush_deadline", spec.exit_flush_deadline);
  read(in, "record_answers", spec.record_answers);
  read(in, "ledger_directory", spec.ledger_directory);
  read(in, "files_directory", spec.files_directory);
  read(in, "break_guard", spec.break_guard);
  read(in, "parent_pid", spec.parent_pid);
}

std::vector<std::size_t> request_plan(const WorkerSpec& spec) {
  const std::size_t partitions = std::max<std::size_t>(1, spec.partition_count);
  std::vector<std::size_t> plan;
  for (std::size_t i = 0; i < spec.op_count; ++i) {
    if (i % partitions != spec.partition_index % partitions) continue;
    for (std::size_t r = 0; r < spec.repeat; ++r) plan.push_back(spec.op_first + i);
  }
  if (spec.shuffle) {
    std::mt19937_64 random(spec.seed);
    const std::size_t chunk = spec.burst_size > 0 ? spec.burst_size : plan.size();
    for (std::size_t begin = 0; begin < plan.size(); begin += chunk) {
      const auto first = plan.begin() + static_cast<std::ptrdiff_t>(begin);
      const auto last =
          plan.begin() + static_cast<std::ptrdiff_t>(std::min(plan.size(), begin + chunk));
      std::shuffle(first, last, random);
    }
  }
  return plan;
}

std::string op_id(const WorkerSpec& spec, std::size_t number) {
  return numbered_op_ids(spec.op_pattern, 1, number).front();
}

std::filesystem::path stats_path(const WorkerSpec& spec) {
  return std::filesystem::path(spec.files_directory) / (spec.name + ".stats.json");
}

std::filesystem::path probe_path(const WorkerSpec& spec) {
  return std::filesystem::path(spec.files_directory) / (spec.name + ".probe");
}

std::filesystem::path events_path(const WorkerSpec& spec) {
  return std::filesystem::path(spec.files_directory) / (spec.name + ".events");
}

std::vector<WorkerEvent> read_events(const std::filesystem::path& file) {
  std::vector<WorkerEvent> events;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (in.eof()) break;  // no newline: torn by a kill mid-write
    try {
      const json event = json::parse(line);
      events.push_back({event.at("event").get<std::string>(), event.value("op", ""),
                        event.value("token", std::uint64_t{0}),
                        event.value("started_ns", std::int64_t{0}),
                        event.value("ended_ns", std::int64_t{0})});
    } catch (const json::exception&) {
      // An unreadable line is skipped; the stats still count the event.
    }
  }
  return events;
}

std::string effect_result(std::string_view worker, std::int64_t pid, std::uint64_t token) {
  return fmt::format("{}/{}/{}", worker, pid, token);
}

void to_json(json& out, const WorkerStats& stats) {
  json lease_lost = json::array();
  for (const LeaseLostReport& report : stats.lease_lost_ops)
    lease_lost.push_back({{"op", report.op}, {"token", report.token}});
  out = json{{"name", stats.name},
             {"pid", stats.pid},
             {"requests", stats.requests},
             {"executed", stats.executed},
             {"duplicates", stats.duplicates},
             {"recoveries", stats.recoveries},
             {"store_errors", stats.store_errors},
             {"replication_shortfalls", stats.replication_shortfalls},
             {"in_progress", stats.in_progress},
             {"lease_lost", stats.lease_lost},
             {"commit_pending", stats.commit_pending},
             {"journal_left", stats.journal_left},
             {"gave_up", stats.gave_up},
             {"unexpected_errors", stats.unexpected_errors},
             {"inconsistent_results", stats.inconsistent_results},
             {"max_call_latency_us", stats.max_call_latency_us},
             {"elapsed_seconds", stats.elapsed_seconds},
             {"results", stats.results},
             {"lease_lost_ops", std::move(lease_lost)},
             {"errors", stats.errors}};
}

void from_json(const json& in, WorkerStats& stats) {
  read(in, "name", stats.name);
  read(in, "pid", stats.pid);
  read(in, "requests", stats.requests);
  read(in, "executed", stats.executed);
  read(in, "duplicates", stats.duplicates);
  read(in, "recoveries", stats.recoveries);
  read(in, "store_errors", stats.store_errors);
  read(in, "replication_shortfalls", stats.replication_shortfalls);
  read(in, "in_progress", stats.in_progress);
  read(in, "lease_lost", stats.lease_lost);
  read(in, "commit_pending", stats.commit_pending);
  read(in, "journal_left", stats.journal_left);
  read(in, "gave_up", stats.gave_up);
  read(in, "unexpected_errors", stats.unexpected_errors);
  read(in, "inconsistent_results", stats.inconsistent_results);
  read(in, "max_call_latency_us", stats.max_call_latency_us);
  read(in, "elapsed_seconds", stats.elapsed_seconds);
  read(in, "results", stats.results);
  read(in, "errors", stats.errors);
  stats.lease_lost_ops.clear();
  if (const auto it = in.find("lease_lost_ops"); it != in.end()) {
    for (const json& report : *it)
      stats.lease_lost_ops.push_back(
          {report.at("op").get<std::string>(), report.at("token").get<std::uint64_t>()});
  }
}

WorkerStats total(std::span<const WorkerStats> stats) {
  WorkerStats sum;
  for (const WorkerStats& worker : stats) {
    sum.requests += worker.requests;
    sum.executed += worker.executed;
    sum.duplicates += worker.duplicates;
    sum.recoveries += worker.recoveries;
    sum.store_errors += worker.store_errors;
    sum.replication_shortfalls += worker.replication_shortfalls;
    sum.in_progress += worker.in_progress;
    sum.lease_lost += worker.lease_lost;
    sum.commit_pending += worker.commit_pending;
    sum.journal_left += worker.journal_left;
    sum.gave_up += worker.gave_up;
    sum.unexpected_errors += worker.unexpected_errors;
    sum.inconsistent_results += worker.inconsistent_results;
    sum.max_call_latency_us = std::max(sum.max_call_latency_us, worker.max_call_latency_us);
    sum.elapsed_seconds = std::max(sum.elapsed_seconds, worker.elapsed_seconds);
  }
  return sum;
}

}  // namespace prodsafe::chaos
