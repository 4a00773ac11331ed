// The retry loop's instruments in one registry (docs/metrics.md):
//   prodsafe_retry_attempts_total{job_type}
//   prodsafe_retry_retries_total{job_type}
//   prodsafe_retry_gave_up_total{job_type, reason}
//   prodsafe_retry_hook_errors_total{job_type, hook}
//
// RetryPolicy::metrics holds one. It is made from a registry pointer, so a
// policy names its registry and owns its instruments in one field:
//
//   metrics::Registry registry;
//   RetryPolicy policy{.job_type = "payments", .metrics = &registry};
//
// Making one registers the families; a job type's series are resolved on its
// first loop and reused after (past 1,000 job types, further ones share the
// "__overflow__" series). Copies share them, and the last copy frees them: a
// policy's series live as long as the policy, not as long as the process.
// Made from nullptr, it is the process's one set in default_registry().
//
// Thread safety: safe for concurrent use, copies included.
#pragma once

#include <memory>

namespace prodsafe::metrics {
class Registry;
}

namespace prodsafe::retry {

class RetryLoop;

class RetryInstruments {
 public:
  // The instruments in `registry`, which must outlive every loop run with
  // them. nullptr: metrics::default_registry()'s. Implicit, so that a
  // policy's `.metrics = &registry` makes them.
  RetryInstruments(metrics::Registry* registry = nullptr);  // NOLINT(google-explicit-constructor)

  [[nodiscard]] metrics::Registry& registry() const noexcept;

 private:
  friend class RetryLoop;
  // The families and the job types' series (retry_series.hpp).
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

}  // namespace prodsafe::retry
