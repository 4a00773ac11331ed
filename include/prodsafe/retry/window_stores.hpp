// Both RetryWindowStore implementations. Include the one you use instead:
// in_memory_window_store.hpp needs only prodsafe::retry, redis_window_store.hpp
// needs prodsafe::retry_redis.
#pragma once

#include "prodsafe/retry/in_memory_window_store.hpp"
#include "prodsafe/retry/redis_window_store.hpp"
