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

LeaseKeeper::Registration LeaseKeeper::keep(std::string key, std::uint64_t token,
                                            std::chrono::milliseconds lease) {
  auto lost = std::make_shared<std::atomic<bool>>(false);
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    id = next_id_++;
    leases_.emplace(id, Lease{std::move(key), token, lease,
                              std::chrono::steady_clock::now() + lease / 3, lost});
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  }
  changed_.notify_all();
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
      changed_.wait(lock);
      continue;
    }
    SteadyTime earliest = SteadyTime::max();
    for (const auto& [id, lease] : leases_) earliest = std::min(earliest, lease.next_renewal);
    if (changed_.wait_until(lock, earliest) == std::cv_status::no_timeout) continue;

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
        if (store_.renew(lease.key, lease.token, lease.lease)) {
          renewals_.fetch_add(1);
        } else {
          lease.lost->store(true);
          logger()->warn("lease on {} (token {}) was lost while the effect ran", lease.key,
                         lease.token);
        }
      } catch (const Error& error) {
        logger()->warn("cannot renew the lease on {} (token {}): {}", lease.key, lease.token,
                       error.what());
      }
    }
    lock.lock();
  }
}

}  // namespace prodsafe::idempotency
