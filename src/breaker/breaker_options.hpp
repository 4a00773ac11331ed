// Internal: the checks CircuitBreaker's constructor makes.
#pragma once

#include <string>

#include "prodsafe/breaker/circuit_breaker.hpp"

namespace prodsafe::breaker::detail {

// Throws InvalidArgument naming the job type or the option out of its range
// (CircuitBreaker's constructor lists the ranges).
void validate_breaker(const std::string& job_type, const CircuitBreakerOptions& options);

}  // namespace prodsafe::breaker::detail
