// How far a claim and a commit must be replicated before they count: the
// answer to "what is my exactly-once worth when the primary dies".
//
// Redis replicates asynchronously: a claim the primary acknowledged and had
// not yet sent to a replica is lost when that replica is promoted, and a
// second worker can claim the same effect again. With `replicas` > 0 the
// Redis effect store sends `WAIT replicas timeout` on the connection that
// wrote the claim (in the same round trip), and uses a claim only when that
// many replicas acknowledged it; a commit that falls short is retried, then
// journaled, like any failed commit. WAIT is not consensus: an acknowledged
// write can still be lost when Sentinel or the cluster promotes a replica
// that had not received it (another one acknowledged), or in a partition
// that leaves the old primary accepting writes (min-replicas-to-write bounds
// that). docs/guarantees.md has what the chaos suite measured.
#pragma once

#include <chrono>

namespace prodsafe::idempotency {

struct Durability {
  // Replicas that must acknowledge a claim and a commit; 0 to 100. Default:
  // 0, off: no WAIT, no extra work.
  int replicas = 0;
  // How long to wait for them; 1 ms to 24 h (WAIT's 0, "forever", would
  // hang a worker whose replica is down, so it is refused). Default: 100 ms.
  std::chrono::milliseconds timeout{100};
  // Also wait until the primary and the replicas have written the write to
  // their append-only files (WAITAOF 1 replicas timeout): needs Redis 7.2 or
  // later, checked at first use (ConfigError on an older server). Default:
  // false.
  bool aof = false;

  [[nodiscard]] bool on() const noexcept { return replicas > 0 || aof; }
  friend bool operator==(const Durability&, const Durability&) = default;
};

}  // namespace prodsafe::idempotency
