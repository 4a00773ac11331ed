// Both BreakerStore implementations. Include the one you use instead:
// in_memory_breaker_store.hpp needs only prodsafe::breaker,
// redis_breaker_store.hpp needs prodsafe::breaker_redis.
#pragma once

#include "prodsafe/breaker/in_memory_breaker_store.hpp"
#include "prodsafe/breaker/redis_breaker_store.hpp"
