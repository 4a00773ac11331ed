#include "prodsafe/idempotency/in_memory_effect_store.hpp"

#include <algorithm>

#include "prodsafe/core/random.hpp"

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
    : clock_(clock != nullptr ? *clock : SystemClock::instance()),
      identity_("memory " + random_id()) {}

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
    // A new lifetime starts above every token this store ever issued.
    const std::uint64_t token = ++last_token_;
    std::string holder_id = random_id();
    records_[name] = Record{.state = "in_progress",
                            .token = token,
                            .holder_id = holder_id,
                            .fingerprint = std::string(fingerprint),
                            .result = {},
                            .error = {},
                            .lease_until = now + lease,
                            .expires_at = now + ttl};
    return Claim{.status = ClaimStatus::kClaimed,
                 .token = token,
                 .holder_id = std::move(holder_id),
                 .ttl_remaining = ttl};
  }
  const std::string& stored_fp = record->fingerprint;
  if (record->state != "released" && !fingerprint.empty() && !stored_fp.empty() &&
      fingerprint != stored_fp) {
    return Claim{.status = ClaimStatus::kConflict,
                 .token = record->token,
                 .payload = stored_fp,
                 .fingerprint = stored_fp};
  }
  if (record->state == "completed" || record->state == "unavailable") {
    const bool completed = record->state == "completed";
    return Claim{.status = completed ? ClaimStatus::kCompleted : ClaimStatus::kUnavailable,
                 .token = record->token,
                 .payload = completed ? record->result : record->error,
                 .fingerprint = stored_fp,
                 .ttl_remaining = remaining(record->expires_at, now)};
  }
  if (record->state == "failed") {
    return Claim{.status = ClaimStatus::kFailed,
                 .token = record->token,
                 .payload = record->error,
                 .fingerprint = stored_fp};
  }
  if (record->state == "in_progress" && record->lease_until > now) {
    return Claim{.status = ClaimStatus::kInProgress,
                 .token = record->token,
                 .fingerprint = stored_fp,
                 .retry_after = remaining(record->lease_until, now)};
  }
  // An expired lease, or a claim released after its effect threw: a previous
  // run may have acted.
  // A record a renewal wrote anew carries its holder's old token: a
  // recovery of it starts above every token issued meanwhile.
  Claim claim{.status = ClaimStatus::kRecovered,
              .token = (record->revived ? std::max(record->token, last_token_) : record->token) + 1,
              .holder_id = random_id(),
              .fingerprint = stored_fp,
              .ttl_remaining = ttl};
  record->state = "in_progress";
  record->token = claim.token;
  record->holder_id = claim.holder_id;
  record->revived = false;
  last_token_ = std::max(last_token_, claim.token);
  if (!fingerprint.empty()) record->fingerprint = std::string(fingerprint);
  record->lease_until = now + lease;
  record->expires_at = now + ttl;
  return claim;
}

bool InMemoryEffectStore::Record::held_by(const Holder& holder) const {
  return token == holder.token && holder_id == holder.id;
}

FinishStatus InMemoryEffectStore::finish(std::string_view key, const Holder& holder,
                                         FinalState state, std::string_view payload,
                                         std::string_view fingerprint, milliseconds ttl) {
  const std::string name(key);
  const std::string_view state_name = to_string(state);
  const bool completed = state == FinalState::kCompleted;
  std::lock_guard lock(mutex_);
  const auto now = clock_.steady_now();
  Record* record = find_live(name, now);
  if (record == nullptr) {
    Record fresh{.state = std::string(state_name),
                 .token = holder.token,
                 .holder_id = holder.id,
                 .fingerprint = std::string(fingerprint),
                 .result = {},
                 .error = {},
                 .lease_until = {},
                 .expires_at = now + ttl};
    (completed ? fresh.result : fresh.error) = std::string(payload);
    records_[name] = std::move(fresh);
    return FinishStatus::kDone;
  }
  if (!record->held_by(holder)) return FinishStatus::kLeaseLost;
  if (record->state == state_name) return FinishStatus::kDone;
  if (record->state != "in_progress") return FinishStatus::kLeaseLost;
  record->state = std::string(state_name);
  (completed ? record->result : record->error) = std::string(payload);
  return FinishStatus::kDone;  // the record keeps its expiry
}

bool InMemoryEffectStore::release(std::string_view key, const Holder& holder) {
  std::lock_guard lock(mutex_);
  Record* record = find_live(std::string(key), clock_.steady_now());
  if (record == nullptr || record->state != "in_progress" || !record->held_by(holder)) {
    return false;
  }
  record->state = "released";
  return true;
}

bool InMemoryEffectStore::renew(std::string_view key, const Holder& holder, milliseconds lease,
                                milliseconds ttl, std::string_view fingerprint) {
  const std::string name(key);
  std::lock_guard lock(mutex_);
  const auto now = clock_.steady_now();
  Record* record = find_live(name, now);
  if (record == nullptr) {
    // Vanished under a live effect: written anew so no second claim starts.
    records_[name] = Record{.state = "in_progress",
                            .token = holder.token,
                            .holder_id = holder.id,
                            .fingerprint = std::string(fingerprint),
                            .result = {},
                            .error = {},
                            .lease_until = now + lease,
                            .expires_at = now + ttl,
                            .revived = true};
    return true;
  }
  if (record->state != "in_progress" || !record->held_by(holder)) return false;
  record->lease_until = now + lease;
  record->expires_at = std::max(record->expires_at, now + ttl);
  return true;
}

std::optional<EffectRecord> InMemoryEffectStore::inspect(std::string_view key) {
  std::lock_guard lock(mutex_);
  const auto now = clock_.steady_now();
  const Record* record = find_live(std::string(key), now);
  if (record == nullptr) return std::nullopt;
  return EffectRecord{.state = record->state,
                      .token = record->token,
                      .holder_id = record->holder_id,
                      .fingerprint = record->fingerprint,
                      .result = record->result,
                      .error = record->error,
                      .lease_remaining = record->state == "in_progress"
                                             ? remaining(record->lease_until, now)
                                             : milliseconds(0),
                      .ttl_remaining = remaining(record->expires_at, now)};
}

std::string InMemoryEffectStore::identity() const { return identity_; }

bool InMemoryEffectStore::clear(std::string_view key) {
  std::lock_guard lock(mutex_);
  return records_.erase(std::string(key)) == 1;
}

std::size_t InMemoryEffectStore::size() const {
  std::lock_guard lock(mutex_);
  return records_.size();
}

}  // namespace prodsafe::idempotency
