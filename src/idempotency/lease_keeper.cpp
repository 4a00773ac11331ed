#include "lease_keeper.hpp"

#include <vector>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/log.hpp"

namespace prodsafe::idempotency {

LeaseKeeper::Registration::~Registration() {
  if (keeper_ != nullptr) keeper_->forget(id_);
}

LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

LeaseKeeper::Registration LeaseKeeper::keep(std::string key, Holder holder,
                                            std::chrono::milliseconds lease,
                                            std::chrono::milliseconds ttl,
                                            std::string fingerprint) {
  auto lost = std::make_shared<std::atomic<bool>>(false);
  std::uint64_t id = 0;
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
    const SteadyTime renewal = std::chrono::steady_clock::now() + lease / 3;
    leases_.emplace(id, Lease{std::move(key), std::move(holder), lease, ttl, std::move(fingerprint),
                              renewal, lost});
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    // Most effects end long before their first renewal: wake the thread only
    // when it sleeps past this one, which keeps registration off the hot path.
    wake = renewal < wake_at_;
  }
  if (wake) changed_.notify_all();
  return Registration(this, id, std::move(lost));
}

void LeaseKeeper::forget(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  leases_.erase(id);
}

void LeaseKeeper::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (leases_.empty()) {
      wake_at_ = SteadyTime::max();
      changed_.wait(lock);
      continue;
    }
    wake_at_ = SteadyTime::max();
    for (const auto& [id, lease] : leases_) wake_at_ = std::min(wake_at_, lease.next_renewal);
    if (changed_.wait_until(lock, wake_at_) == std::cv_status::no_timeout) continue;

    const SteadyTime now = std::chrono::steady_clock::now();
    std::vector<Lease> due;
    for (auto& [id, lease] : leases_) {
      if (lease.next_renewal > now) continue;
      due.push_back(lease);
      lease.next_renewal = now + lease.lease / 3;
    }
    lock.unlock();
    for (const Lease& lease : due) {
      try {
        if (store_.renew(lease.key, lease.holder, lease.lease, lease.ttl, lease.fingerprint)) {
          renewals_.fetch_add(1);
        } else {
          lease.lost->store(true);
          logger()->warn("lease on {} (token {}) was lost while the effect ran", lease.key,
                         lease.holder.token);
        }
      } catch (const std::exception& error) {
        logger()->warn("cannot renew the lease on {} (token {}): {}", lease.key, lease.holder.token,
                       error.what());
      }
    }
    lock.lock();
  }
}

}  // namespace prodsafe::idempotency
