// Settings for SideEffectWrapper: defaults, per effect type, per call.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "prodsafe/core/clock.hpp"
#include "prodsafe/idempotency/durability.hpp"

#include "prodsafe/tracing/trace_context.hpp"

namespace prodsafe::metrics {
class Registry;
}

namespace prodsafe::tracing {
class Tracer;
}

namespace prodsafe::idempotency {

using std::chrono::milliseconds;

// What a caller gets when another worker holds a live lease on the effect.
enum class InProgressPolicy {
  // Throw AlreadyInProgress carrying the time left on that lease.
  kThrow,
  // Poll with backoff until the effect completes, its lease expires (then
  // this caller recovers it), or wait_timeout passes (then AlreadyInProgress).
  kWait,
};

// Overrides for one effect type; unset fields fall back to WrapperOptions.
struct EffectPolicy {
  std::optional<milliseconds> ttl{};
  std::optional<milliseconds> lease{};
  std::optional<bool> record_failures{};
  // When Redis cannot be reached at claim time: false (the default) fails
  // closed, the effect is not run and StoreUnavailable is thrown; true runs
  // the effect unprotected, counts it (stats().fail_open) and logs a warning.
  // Only for effects whose duplicates are harmless.
  bool fail_open = false;
  // Replaces WrapperOptions::durability for this type.
  std::optional<Durability> durability{};
};

// Durations are checked when the wrapper is made (InvalidArgument naming the
// field): ttl more than 0 and at most 3,650 days; lease, wait_poll_initial,
// wait_poll_max and journal_flush_interval more than 0 and at most 24 h;
// wait_timeout, commit_retry_delay and journal_scan_interval 0 to 24 h.
struct WrapperOptions {
  // How long a record (and so the duplicate protection) lives, counted from
  // its claim (a recovery starts it again). Default: 72 h. Must exceed the lease.
  milliseconds ttl = std::chrono::hours(72);
  // How long a claim is exclusive before another worker may recover it.
  // Default: 30 s. Choose it above the effect's longest run, or keep
  // renew_leases on.
  milliseconds lease = std::chrono::seconds(30);
  // Renew the lease every lease/3 while the effect runs, and while its result
  // waits in the journal, from a background thread, so that a slow but live
  // effect is not recovered. A renewal also keeps the record alive at least
  // `ttl` (a record lives `ttl` from its claim or its last renewal), and
  // writes it anew if it vanished (evicted, deleted) under the effect.
  // Default: true.
  bool renew_leases = true;
  // Default: kThrow.
  InProgressPolicy in_progress = InProgressPolicy::kThrow;
  // kWait gives up after this long. Default: 30 s.
  milliseconds wait_timeout = std::chrono::seconds(30);
  // kWait polls first after this, doubling up to wait_poll_max.
  // Defaults: 20 ms and 1 s.
  milliseconds wait_poll_initial = milliseconds(20);
  milliseconds wait_poll_max = std::chrono::seconds(1);
  // On an exception from the effect: false (default) releases the claim so a
  // later call runs it again (with ctx.recovering set: the failed run may
  // have acted); true keeps a FAILED record that later calls get as
  // EffectFailed until the record expires or is cleared. An exception that
  // says it is retryable (prodsafe::Error::retryable()) is never recorded:
  // its claim is released.
  bool record_failures = false;
  // Commit attempts before the result goes to the journal. Any failure of a
  // commit (unreachable, OOM, NOREPLICAS, MISCONF, READONLY, a damaged
  // record...) is retried, then journaled: once the effect has run, its
  // result is never dropped. Default: 3, with commit_retry_delay, doubling
  // up to 24 h, between them (default 50 ms). 0 means 1.
  int commit_attempts = 3;
  milliseconds commit_retry_delay = milliseconds(50);
  // Where results whose commit failed after the effect ran are kept (fsynced)
  // until they are committed. Empty (the default): $PRODSAFE_JOURNAL_DIR,
  // else /var/tmp/prodsafe-journal-<effective uid> (/var/tmp survives a
  // reboot; the uid keeps users apart). Every wrapper of every process of the
  // user may share it: each keeps its own file and adopts the files of dead
  // processes that belong to the same store. It must be private to the user
  // (made 0700; one owned by another user or writable by group or others is
  // refused with InvalidArgument: when the wrapper is made if the directory
  // exists, else when it is first needed, and the result is then not
  // journaled; see docs/operations.md).
  std::string journal_directory{};
  // Names the store in journal entries. Empty (the default): the store's
  // identity (for Redis: endpoint, database and key prefix). Set it when
  // processes reach the same Redis through different addresses (a DNS name
  // and an IP), so that they adopt each other's journals.
  std::string journal_namespace{};
  // While results wait in the journal, a background thread tries to commit
  // them this often. Default: 200 ms.
  milliseconds journal_flush_interval = milliseconds(200);
  // How often the background thread looks for the journals of dead processes
  // of the same store, to adopt and commit them. Default: 10 s. Zero: only
  // when the wrapper is made.
  milliseconds journal_scan_interval = std::chrono::seconds(10);
  // Completed results kept in process (LRU) so a duplicate is answered without
  // a round trip. Default: 0, off. An entry lives no longer than the record's
  // TTL; a record deleted by hand (EffectStore::clear) stays cached in other
  // wrappers until then.
  std::size_t result_cache_size = 0;
  // How far claims and commits must be replicated before they count
  // (durability.hpp): WAIT after each, in the same round trip. A claim that
  // falls short is not used: the effect does not run and the call throws
  // ReplicationShortfall (retryable). A commit that falls short counts as a
  // failed attempt: retried, then journaled; the background thread commits
  // journaled results with this (the wrapper's) setting. Needs a store that
  // waits_for_replicas() (RedisEffectStore): the wrapper refuses others when
  // it is made. Default: off.
  Durability durability{};
  // Per effect type name (e.g. "ORDER_PLACEMENT"). Default: none.
  std::map<std::string, EffectPolicy, std::less<>> per_type{};
  // Default: SystemClock::instance(). Waits, backoff and the cache use it;
  // leases use the Redis server's clock (or the in-memory store's).
  Clock* clock = nullptr;
  // Traces each call (docs/operations.md "Tracing"): a span
  // "prodsafe.execute_once" (attributes prodsafe.effect.type,
  // prodsafe.effect.key, prodsafe.fencing_token, prodsafe.outcome,
  // prodsafe.recovering) with children "prodsafe.claim", "prodsafe.effect"
  // and "prodsafe.commit" for the steps the call takes; EffectContext carries
  // the effect span's traceparent. Default: null, no spans.
  std::shared_ptr<tracing::Tracer> tracer{};
  // Where the wrapper's instruments go (docs/metrics.md). Default: nullptr,
  // metrics::default_registry(). Must outlive the wrapper.
  metrics::Registry* metrics = nullptr;
};

// Overrides for one call.
struct CallOptions {
  std::optional<milliseconds> ttl{};
  std::optional<milliseconds> lease{};
  // Identifies the request (e.g. a hash of the order's fields). A call whose
  // fingerprint differs from the stored one gets Conflict; an empty
  // fingerprint on either side is not compared. Default: empty.
  std::string fingerprint{};
  std::optional<InProgressPolicy> in_progress{};
  std::optional<milliseconds> wait_timeout{};
  // With tracing on: the parent of this call's span, e.g. parsed from an
  // incoming traceparent (tracing::parse_traceparent). Default: none, a new
  // trace.
  std::optional<tracing::TraceContext> trace_parent{};
};

}  // namespace prodsafe::idempotency
