// Renews the leases of effects that are running, and of journaled results
// waiting for their commit, from one background thread, every lease/3, so that
// a slow but live effect is not recovered by another worker and its record
// does not expire under it (EffectStore::renew). Uses real (steady) time: it
// exists to talk to the store on time.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "prodsafe/idempotency/effect_store.hpp"

namespace prodsafe::idempotency {

class LeaseKeeper {
 public:
  explicit LeaseKeeper(EffectStore& store) : store_(store) {}
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // Keeps renewing until destroyed. lost() turns true when a renewal found the
  // token superseded (the commit will then report LeaseLost).
  class Registration {
   public:
    Registration(LeaseKeeper* keeper, std::uint64_t id, std::shared_ptr<std::atomic<bool>> lost)
        : keeper_(keeper), id_(id), lost_(std::move(lost)) {}
    Registration(Registration&& other) noexcept
        : keeper_(std::exchange(other.keeper_, nullptr)),
          id_(other.id_),
          lost_(std::move(other.lost_)) {}
    Registration& operator=(Registration&&) = delete;
    ~Registration();
    [[nodiscard]] bool lost() const noexcept { return lost_ && lost_->load(); }

   private:
    LeaseKeeper* keeper_;
    std::uint64_t id_;
    std::shared_ptr<std::atomic<bool>> lost_;
  };

  // Renews `holder`'s lease on `key` to `lease` and the record to at least
  // `ttl`, every lease/3, until the registration is destroyed.
  [[nodiscard]] Registration keep(std::string key, Holder holder, std::chrono::milliseconds lease,
                                  std::chrono::milliseconds ttl, std::string fingerprint);
  // Renewals done since construction (for tests and stats).
  [[nodiscard]] std::uint64_t renewals() const noexcept { return renewals_.load(); }

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct Lease {
    std::string key;
    Holder holder;
    std::chrono::milliseconds lease;
    std::chrono::milliseconds ttl;
    std::string fingerprint;
    SteadyTime next_renewal;
    std::shared_ptr<std::atomic<bool>> lost;
  };

  void run();
  void forget(std::uint64_t id);

  EffectStore& store_;
  // Guards leases_, next_id_, stopping_, wake_at_ and the start of thread_
  // (by the first keep()); the thread waits on changed_. The destructor joins
  // thread_ without it, once stopping_ is set. renewals_ is atomic.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::uint64_t, Lease> leases_;
  std::uint64_t next_id_ = 1;
  bool stopping_ = false;
  // When the thread will next wake by itself (max: only when notified).
  SteadyTime wake_at_ = SteadyTime::min();
  std::thread thread_;
  std::atomic<std::uint64_t> renewals_{0};
};

}  // namespace prodsafe::idempotency
