// What execute_once() hands back, and what the effect function receives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace prodsafe::idempotency {

// Given to the effect function. Pass key and fencing_token to the downstream
// system so it can dedupe on its side (for an exchange: the client order id);
// when `recovering` is true a previous holder may have acted already, so check
// the downstream before acting again.
struct EffectContext {
  std::string key;
  std::uint64_t fencing_token = 0;
  bool recovering = false;
  // With tracing on (WrapperOptions::tracer): the W3C traceparent of the
  // effect's span. Send it with the downstream call (an HTTP header) and the
  // exchange's span becomes its child. Empty with tracing off.
  std::string traceparent{};
};

// The result of execute_once(). Destructures like the seed's tuple:
//   auto [executed, result] = wrapper.execute_once(...);
template <class T>
struct Outcome {
  // True when this call ran the effect; false when a previous run's cached
  // result is returned.
  bool executed = false;
  T result{};
  // This call ran the effect after taking over from a previous run that may
  // have acted (its lease expired, or it threw and released its claim).
  bool recovered = false;
  // The effect ran but its result could not be committed yet: it is in the
  // local journal and will be committed when the store answers again.
  bool commit_pending = false;
  // The effect ran without protection because the store was unreachable and
  // the effect type is configured to fail open.
  bool unprotected = false;
  // Answered from the in-process result cache, without a round trip.
  bool from_cache = false;
  // This call ran the effect, but its result could not be encoded (Codec
  // threw EncodeError), so it is not stored: the effect is recorded as done
  // and later calls get ResultUnavailable instead of running it again.
  bool result_unavailable = false;
  std::string key{};
  std::uint64_t fencing_token = 0;

  template <std::size_t I>
  decltype(auto) get() & {
    if constexpr (I == 0)
      return (executed);
    else
      return (result);
  }
  template <std::size_t I>
  decltype(auto) get() const& {
    if constexpr (I == 0)
      return (executed);
    else
      return (result);
  }
  template <std::size_t I>
  decltype(auto) get() && {
    if constexpr (I == 0)
      return std::move(executed);
    else
      return std::move(result);
  }
};

}  // namespace prodsafe::idempotency

template <class T>
struct std::tuple_size<prodsafe::idempotency::Outcome<T>> : std::integral_constant<std::size_t, 2> {
};
template <class T>
struct std::tuple_element<0, prodsafe::idempotency::Outcome<T>> {
  using type = bool;
};
template <class T>
struct std::tuple_element<1, prodsafe::idempotency::Outcome<T>> {
  using type = T;
};
