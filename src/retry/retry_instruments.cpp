#include "prodsafe/retry/retry_instruments.hpp"

#include "retry_series.hpp"

namespace prodsafe::retry {

RetryInstruments::Shared::Shared(metrics::Registry& registry)
    : registry(registry),
      attempts(registry.counter("prodsafe_retry_attempts_total",
                                "Attempts made by retry loops, first attempts included.",
                                {"job_type"})),
      retries(registry.counter("prodsafe_retry_retries_total", "Retries scheduled by retry loops.",
                               {"job_type"})),
      gave_up(registry.counter("prodsafe_retry_gave_up_total",
                               "Retry loops that ended on a failure, by reason.",
                               {"job_type", "reason"})),
      hook_errors(registry.counter(
          "prodsafe_retry_hook_errors_total",
          "Exceptions thrown by retry loops' hooks and policy callbacks, contained: they never "
          "change an attempt's outcome.",
          {"job_type", "hook"})),
      by_job_type([this](std::string_view job_type) {
        RetrySeries made{&attempts.labels({job_type}), &retries.labels({job_type}), {}, {}};
        for (std::size_t i = 0; i < kGaveUpReasons.size(); ++i)
          made.gave_up[i] = &gave_up.labels({job_type, kGaveUpReasons[i]});
        for (std::size_t i = 0; i < kHookNames.size(); ++i)
          made.hook_errors[i] = &hook_errors.labels({job_type, kHookNames[i]});
        return made;
      }) {}

RetryInstruments::RetryInstruments(metrics::Registry* registry) {
  if (registry != nullptr) {
    shared_ = std::make_shared<Shared>(*registry);
    return;
  }
  // Made once, after default_registry() and so destroyed before it.
  static const std::shared_ptr<Shared> process_wide =
      std::make_shared<Shared>(metrics::default_registry());
  shared_ = process_wide;
}

metrics::Registry& RetryInstruments::registry() const noexcept { return shared_->registry; }

}  // namespace prodsafe::retry
