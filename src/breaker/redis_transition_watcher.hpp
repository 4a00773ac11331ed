// Internal: RedisBreakerStore::watch(), a pub/sub subscriber on a circuit's
// channel with a connection and a thread of its own.
#pragma once

#include <string>

#include "prodsafe/breaker/breaker_store.hpp"
#include "prodsafe/redis/endpoint.hpp"
#include "prodsafe/redis/options.hpp"

namespace prodsafe::breaker::detail {

// Subscribes to `channel` in the background and calls `callback` on the
// watcher's thread with each transition message; reconnects every half
// second while the server cannot be reached.
[[nodiscard]] Subscription watch_transitions(const redis::Endpoint& endpoint,
                                             redis::Options options, std::string channel,
                                             TransitionCallback callback);

}  // namespace prodsafe::breaker::detail
