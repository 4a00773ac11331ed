// Circuit breaker records read back from Redis (src/breaker/breaker_reply.hpp):
// the fuzz bytes are RESP replies, as the breaker script (or a damaged record,
// or another version's script) and the pub/sub channel could send them. Every
// decoder returns a value or throws a prodsafe::Error.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "breaker_reply.hpp"
#include "fuzz_support.hpp"
#include "prodsafe/core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace detail = prodsafe::breaker::detail;
  using prodsafe::breaker::to_string;
  using prodsafe::fuzz::require;
  const std::vector<prodsafe::redis::Reply> replies =
      prodsafe::fuzz::RespReader(prodsafe::fuzz::as_text(data, size)).all();
  for (const prodsafe::redis::Reply& reply : replies) {
    try {
      if (reply.is_error()) {
        // What Script::run throws for an error reply.
        detail::rethrow_breaker_error("prodsafe:circuit:job",
                                      prodsafe::ReplyError(reply.error_message(), "breaker"));
      }
      const auto snapshot = detail::decode_breaker_reply("prodsafe:circuit:job", reply);
      require(to_string(snapshot.state) != "UNKNOWN", "a state outside the enum");
      require(to_string(snapshot.previous) != "UNKNOWN", "a previous state outside the enum");
    } catch (const prodsafe::Error&) {
    }
    try {
      const auto event = detail::decode_breaker_event(reply);
      if (event) require(to_string(event->state) != "UNKNOWN", "an event state outside the enum");
    } catch (const prodsafe::Error&) {
    }
  }
  return 0;
}
