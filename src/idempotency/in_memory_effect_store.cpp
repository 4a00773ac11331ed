#include "prodsafe/idempotency/in_memory_effect_store.hpp"

#include <algorithm>

namespace prodsafe::idempotency {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr std::size_t kSweepEvery = 1024;

milliseconds remaining(Clock::SteadyTime until, Clock::SteadyTime now) {
  return until > now ? duration_cast<milliseconds>(until - now) : milliseconds(0);
}

}  // namespace

InMemoryEffectStore::InMemoryEffectStore(Clock* clock)
    : clock_(clock != nullptr ? *clock : SystemClock::instance()) {}

InMemoryEffectStore::Record* InMemoryEffectStore::find_live(const std::string& key,
                                                            Clock::SteadyTime now) {
  const auto found = records_.find(key);
  if (found == records_.end()) return nullptr;
  if (found->second.expires_at <= now) {
    records_.erase(found);
    return nullptr;
  }
  return &found->second;
}

void InMemoryEffectStore::maybe_sweep(Clock::SteadyTime now) {
  if (++operations_ % kSweepEvery != 0) return;
  std::erase_if(records_, [now](const auto& entry) { return entry.second.expires_at <= now; });
}

Claim InMemoryEffectStore::claim(std::string_view key, std::string_view fingerprint,
                                 milliseconds lease, milliseconds ttl) {
  const std::string name(key);
  std::lock_guard lock(mutex_);
  const auto now = clock_.steady_now();
  maybe_sweep(now);
  Record* record = find_live(name, now);
  if (record == nullptr) {
    records_[name] = Record{.state = "in_progress",
                            .token = 1,
                            .fingerprint = std::string(fingerprint),
                            .result = {},
                            .error = {},
                            .lease_until = now + lease,
                            .expires_at = now + ttl};
    return Claim{.status = ClaimStatus::kClaimed, .token = 1};
  }
  if (record->state != "released" && !fingerprint.empty() && !record->fingerprint.empty() &&
      fingerprint != record->fingerprint) {
    return Claim{
        .status = ClaimStatus::kConflict, .token = record->token, .payload = record->fingerprint};
  }
  if (record->state == "completed") {
    return Claim{
        .status = ClaimStatus::kCompleted, .token = record->token, .payload = record->result};
  }
  if (record->state == "failed") {
    return Claim{.status = ClaimStatus::kFailed, .token = record->token, .payload = record->error};
  }
  ClaimStatus status = ClaimStatus::kClaimed;
  if (record->state == "in_progress") {
    if (record->lease_until > now) {
      return Claim{.status = ClaimStatus::kInProgress,
                   .token = record->token,
                   .retry_after = remaining(record->lease_until, now)};
    }
    status = ClaimStatus::kRecovered;
  }
  record->state = "in_progress";
  record->token += 1;
  if (!fingerprint.empty()) record->fingerprint = std::string(fingerprint);
  record->lease_until = now + lease;
  record->expires_at = now + ttl;
  return Claim{.status = status, .token = record->token};
}

FinishStatus InMemoryEffectStore::finish(std::string_view key, std::uint64_t token,
                                         const char* state, std::string_view payload,
                                         std::string_view fingerprint, milliseconds ttl) {
  const std::string name(key);
  const bool completed = std::string_view(state) == "completed";
  std::lock_guard lock(mutex_);
  const auto now = clock_.steady_now();
  Record* record = find_live(name, now);
  if (record == nullptr) {
    Record fresh{.state = state,
                 .token = token,
                 .fingerprint = std::string(fingerprint),
                 .result = {},
                 .error = {},
                 .lease_until = {},
                 .expires_at = now + ttl};
    (completed ? fresh.result : fresh.error) = std::string(payload);
    records_[name] = std::move(fresh);
    return FinishStatus::kDone;
  }
  if (record->token != token) return FinishStatus::kLeaseLost;
  if (record->state == state) return FinishStatus::kDone;
  if (record->state != "in_progress") return FinishStatus::kLeaseLost;
  record->state = state;
  (completed ? record->result : record->error) = std::string(payload);
  return FinishStatus::kDone;  // the record keeps the expiry its claim set
}

FinishStatus InMemoryEffectStore::commit(std::string_view key, std::uint64_t token,
                                         std::string_view result, std::string_view fingerprint,
                                         milliseconds ttl) {
  return finish(key, token, "completed", result, fingerprint, ttl);
}

FinishStatus InMemoryEffectStore::record_failure(std::string_view key, std::uint64_t token,
                                                 std::string_view error,
                                                 std::string_view fingerprint, milliseconds ttl) {
  return finish(key, token, "failed", error, fingerprint, ttl);
}

bool InMemoryEffectStore::release(std::string_view key, std::uint64_t token) {
  std::lock_guard lock(mutex_);
  Record* record = find_live(std::string(key), clock_.steady_now());
  if (record == nullptr || record->state != "in_progress" || record->token != token) return false;
  record->state = "released";
  return true;
}

bool InMemoryEffectStore::renew(std::string_view key, std::uint64_t token, milliseconds lease) {
  std::lock_guard lock(mutex_);
  const auto now = clock_.steady_now();
  Record* record = find_live(std::string(key), now);
  if (record == nullptr || record->state != "in_progress" || record->token != token) return false;
  record->lease_until = now + lease;
  return true;
}

std::optional<EffectRecord> InMemoryEffectStore::inspect(std::string_view key) {
  std::lock_guard lock(mutex_);
  const auto now = clock_.steady_now();
  const Record* record = find_live(std::string(key), now);
  if (record == nullptr) return std::nullopt;
  return EffectRecord{.state = record->state,
                      .token = record->token,
                      .fingerprint = record->fingerprint,
                      .result = record->result,
                      .error = record->error,
                      .lease_remaining = record->state == "in_progress"
                                             ? remaining(record->lease_until, now)
                                             : milliseconds(0),
                      .ttl_remaining = remaining(record->expires_at, now)};
}

bool InMemoryEffectStore::clear(std::string_view key) {
  std::lock_guard lock(mutex_);
  return records_.erase(std::string(key)) == 1;
}

std::size_t InMemoryEffectStore::size() const {
  std::lock_guard lock(mutex_);
  return records_.size();
}

}  // namespace prodsafe::idempotency
