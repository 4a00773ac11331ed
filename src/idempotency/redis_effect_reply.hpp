// Internal: how RedisEffectStore reads what Redis hands back (its scripts'
// replies and an effect record's fields). Free functions so the fuzz target
// (fuzz/effect_record_fuzz.cpp) can feed them any reply.
//
// Each returns the decoded value or throws a prodsafe::Error: DecodeError for
// a damaged record, ProtocolError for a reply of the wrong shape.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "prodsafe/idempotency/effect_store.hpp"
#include "prodsafe/redis/reply.hpp"

namespace prodsafe::idempotency::detail {

// The claim script's reply for `key` (stored as `full_key`); `holder_id` is
// the id the claim was made with.
// True when `version` ("7.0.15", "7.2.4", "255.255.255" for unstable) is
// major.minor or later; false for text that is not a version.
[[nodiscard]] bool redis_version_at_least(std::string_view version, int major, int minor);

[[nodiscard]] Claim decode_claim_reply(std::string_view key, std::string_view full_key,
                                       const redis::Reply& reply, std::string holder_id);
// The finish script's reply.
[[nodiscard]] FinishStatus decode_finish_reply(std::string_view key, std::string_view full_key,
                                               const redis::Reply& reply);
// The replies to TYPE, HMGET (state token fp result error lease_until holder),
// PTTL and TIME of the record `full_key`; nullopt when there is none.
[[nodiscard]] std::optional<EffectRecord> decode_inspect_replies(
    std::string_view full_key, const std::vector<redis::Reply>& replies);

}  // namespace prodsafe::idempotency::detail
