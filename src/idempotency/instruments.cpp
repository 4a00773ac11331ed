#include "instruments.hpp"

#include <exception>

#include "prodsafe/core/log.hpp"

namespace prodsafe::idempotency {
namespace {

constexpr std::array<std::string_view, kEventCount> kOutcomeNames = {
    "executed",     "duplicate",      "conflict",     "recovered",
    "lease_lost",   "commit_pending", "in_progress",  "failure_replayed",
    "effect_error", "fail_open",      "encode_error", "result_unavailable"};

std::size_t index(Event event) noexcept { return static_cast<std::size_t>(event); }

}  // namespace

Instruments::Instruments(metrics::Registry& registry)
    : outcomes_(registry.counter("prodsafe_idempotency_outcomes_total",
                                 "execute_once() calls by effect type and outcome.",
                                 {"effect_type", "outcome"})),
      store_errors_(registry.counter(
          "prodsafe_idempotency_store_errors_total",
          "Claims and commits that failed against the effect store (a claim fails closed or runs "
          "open; a commit is retried, then journaled).",
          {"effect_type"})),
      journal_committed_series_(
          registry
              .counter("prodsafe_idempotency_journal_committed_total",
                       "Journaled results committed once the store answered again.")
              .labels({})),
      journal_damaged_series_(
          registry
              .counter("prodsafe_idempotency_journal_damaged_lines_total",
                       "Damaged lines (torn or altered) skipped in adopted commit journals.")
              .labels({})),
      by_type_([this](std::string_view effect_type) {
        TypeSeries made;
        for (std::size_t i = 0; i < kEventCount; ++i)
          made.events[i] = &outcomes_.labels({effect_type, kOutcomeNames[i]});
        made.store_errors = &store_errors_.labels({effect_type});
        return made;
      }) {}

const Instruments::TypeSeries* Instruments::series(std::string_view effect_type) noexcept {
  try {
    return &by_type_.get(effect_type);
  } catch (const std::exception& error) {
    // Metrics must never fail a call (labels() only throws on allocation
    // failure: refused label sets go to the overflow series).
    logger()->warn("idempotency metrics for {} are not recorded: {}", effect_type, error.what());
    return nullptr;
  }
}

void Instruments::count(std::string_view effect_type, Event event) noexcept {
  events_[index(event)].fetch_add(1, std::memory_order_relaxed);
  if (const TypeSeries* found = series(effect_type)) found->events[index(event)]->inc();
}

void Instruments::store_error(std::string_view effect_type) noexcept {
  if (const TypeSeries* found = series(effect_type)) found->store_errors->inc();
}

void Instruments::journal_committed() noexcept {
  journal_committed_.fetch_add(1, std::memory_order_relaxed);
  journal_committed_series_.inc();
}

void Instruments::journal_damaged(std::size_t lines) noexcept {
  journal_damaged_.fetch_add(lines, std::memory_order_relaxed);
  journal_damaged_series_.inc(static_cast<double>(lines));
}

WrapperStats Instruments::stats() const noexcept {
  const auto load = [this](Event event) { return events_[index(event)].load(); };
  return WrapperStats{
      load(Event::kExecuted),    load(Event::kDuplicate),         cache_hits_.load(),
      load(Event::kConflict),    load(Event::kInProgress),        load(Event::kRecovered),
      load(Event::kLeaseLost),   load(Event::kCommitPending),     journal_committed_.load(),
      load(Event::kFailOpen),    load(Event::kEffectError),       load(Event::kFailureReplayed),
      load(Event::kEncodeError), load(Event::kResultUnavailable), journal_damaged_.load()};
}

}  // namespace prodsafe::idempotency
