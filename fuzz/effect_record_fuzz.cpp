// Effect records read back from Redis (src/idempotency/redis_effect_reply.hpp):
// the fuzz bytes are RESP replies, as a damaged record, a script of another
// version or a misbehaving proxy could send them. Every decoder returns a
// value or throws a prodsafe::Error.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_support.hpp"
#include "prodsafe/core/error.hpp"
#include "redis_effect_reply.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace detail = prodsafe::idempotency::detail;
  using prodsafe::fuzz::require;
  using prodsafe::idempotency::ClaimStatus;
  const std::vector<prodsafe::redis::Reply> replies =
      prodsafe::fuzz::RespReader(prodsafe::fuzz::as_text(data, size)).all();
  if (replies.empty()) return 0;
  try {
    const auto claim = detail::decode_claim_reply("k", "prodsafe:k", replies[0], "holder");
    const bool claimed =
        claim.status == ClaimStatus::kClaimed || claim.status == ClaimStatus::kRecovered;
    require(claimed == !claim.holder_id.empty(), "a claim's holder id does not match its status");
    require(claim.ttl_remaining.count() >= 0, "a negative ttl_remaining");
  } catch (const prodsafe::Error&) {
  }
  try {
    (void)detail::decode_finish_reply("k", "prodsafe:k", replies[0]);
  } catch (const prodsafe::Error&) {
  }
  try {
    const auto record = detail::decode_inspect_replies("prodsafe:k", replies);
    if (record) {
      require(record->ttl_remaining.count() >= 0, "a negative ttl_remaining");
      require(record->lease_remaining.count() >= 0, "a negative lease_remaining");
    }
  } catch (const prodsafe::Error&) {
  }
  return 0;
}
