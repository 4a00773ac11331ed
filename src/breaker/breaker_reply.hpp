// Internal: how the Redis breaker store and its transition watcher read what
// Redis hands back (the breaker script's reply, the pub/sub transition
// messages). Free functions so the fuzz target (fuzz/breaker_record_fuzz.cpp)
// can feed them any reply.
#pragma once

#include <optional>
#include <string_view>

#include "prodsafe/breaker/breaker_store.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/reply.hpp"

namespace prodsafe::breaker::detail {

// The breaker script's reply for the circuit stored under `name`. Throws
// ProtocolError when it is not the script's 9-element array.
[[nodiscard]] Snapshot decode_breaker_reply(std::string_view name, const redis::Reply& reply);
// The error the script's error reply stands for: DecodeError for CORRUPT (a
// damaged circuit record), the ReplyError itself otherwise.
[[noreturn]] void rethrow_breaker_error(std::string_view name, const ReplyError& error);
// A pub/sub message on a circuit's channel ("message", channel,
// "STATE[:retry_after_ms[:trips]]"): the transition it announces, or nullopt
// when it is not a transition message.
[[nodiscard]] std::optional<Transition> decode_breaker_event(const redis::Reply& message);

}  // namespace prodsafe::breaker::detail
