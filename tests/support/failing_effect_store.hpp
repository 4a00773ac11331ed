// Test-only: an EffectStore wrapper that fails on demand (the seam of
// leveldb's SpecialEnv), so every degraded path is reachable without killing
// anything. Each counter is the number of next calls of that method that throw
// StoreUnavailable; -1 fails every call until reset. It also counts calls.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "prodsafe/core/error.hpp"
#include "prodsafe/idempotency/effect_store.hpp"

namespace prodsafe::testing {

class FailingEffectStore final : public idempotency::EffectStore {
 public:
  explicit FailingEffectStore(std::shared_ptr<idempotency::EffectStore> inner)
      : inner_(std::move(inner)) {}

  std::atomic<int> fail_claims{0};
  std::atomic<int> fail_commits{0};
  std::atomic<int> fail_releases{0};
  std::atomic<int> fail_renews{0};
  std::atomic<int> claims{0};
  std::atomic<int> commits{0};
  std::atomic<int> releases{0};
  std::atomic<int> renews{0};
  // Runs before each commit (finish) reaches the inner store (e.g. to kill
  // Redis, or to throw the refusal under test).
  std::function<void()> before_commit;

  idempotency::Claim claim(std::string_view key, std::string_view fingerprint,
                           std::chrono::milliseconds lease,
                           std::chrono::milliseconds ttl) override {
    ++claims;
    maybe_fail(fail_claims, "claim");
    return inner_->claim(key, fingerprint, lease, ttl);
  }
  idempotency::FinishStatus finish(std::string_view key, const idempotency::Holder& holder,
                                   idempotency::FinalState state, std::string_view payload,
                                   std::string_view fingerprint,
                                   std::chrono::milliseconds ttl) override {
    ++commits;
    if (before_commit) before_commit();
    maybe_fail(fail_commits, "commit");
    return inner_->finish(key, holder, state, payload, fingerprint, ttl);
  }
  bool release(std::string_view key, const idempotency::Holder& holder) override {
    ++releases;
    maybe_fail(fail_releases, "release");
    return inner_->release(key, holder);
  }
  bool renew(std::string_view key, const idempotency::Holder& holder,
             std::chrono::milliseconds lease, std::chrono::milliseconds ttl,
             std::string_view fingerprint) override {
    ++renews;
    maybe_fail(fail_renews, "renew");
    return inner_->renew(key, holder, lease, ttl, fingerprint);
  }
  std::optional<idempotency::EffectRecord> inspect(std::string_view key) override {
    return inner_->inspect(key);
  }
  bool clear(std::string_view key) override { return inner_->clear(key); }
  std::string identity() const override { return inner_->identity(); }

 private:
  static void maybe_fail(std::atomic<int>& counter, const char* what) {
    int left = counter.load();
    while (left != 0) {
      if (left < 0) throw StoreUnavailable(std::string("injected failure: ") + what);
      if (counter.compare_exchange_weak(left, left - 1)) {
        throw StoreUnavailable(std::string("injected failure: ") + what);
      }
    }
  }

  std::shared_ptr<idempotency::EffectStore> inner_;
};

}  // namespace prodsafe::testing
