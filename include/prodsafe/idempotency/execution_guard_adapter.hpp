// Non-invasive adapters: wrap an existing order-placement or ledger function
// in exactly-once protection without changing it (the seed's
// ExecutionGuardAdapter and wrap_* functions).
//
//   auto [executed, fill] = wrap_order_placement(
//       wrapper, place_order,
//       OrderRequest{.symbol = "BTCUSDT", .side = "buy", .quantity = 0.01, .price = 50000.0});
//
// Order identity: the entity id is the client order id when one is given;
// otherwise it is a hash of the order's canonical fields, so IDENTICAL ORDERS
// WITHIN THE TTL ARE ONE ORDER (give a client order id to place the same order
// twice on purpose). The fields' fingerprint is always stored, so reusing a
// client order id for different fields throws Conflict.
//
// Thread safety: as SideEffectWrapper; the adapter holds only a reference.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "prodsafe/idempotency/side_effect_wrapper.hpp"

namespace prodsafe::idempotency {

struct OrderRequest {
  std::string symbol{};
  // "buy" or "sell", any case.
  std::string side{};
  double quantity = 0;
  // Unset for market orders.
  std::optional<double> price{};
  std::optional<std::string> client_order_id{};
};

// Throws InvalidArgument naming the bad field (empty symbol, a side other
// than buy/sell, a quantity or price that is not a positive finite number).
void validate_order(const OrderRequest& order);
// "symbol=BTCUSDT;side=buy;quantity=0.01;price=50000": symbol upper-cased, side
// lower-cased, numbers in their shortest round-trip form, price "market" when
// unset. The client order id is not part of it.
[[nodiscard]] std::string canonical_order(const OrderRequest& order);
// SHA-1 (hex) of canonical_order().
[[nodiscard]] std::string order_fingerprint(const OrderRequest& order);
// The client order id, or "h-" + order_fingerprint().
[[nodiscard]] std::string order_entity_id(const OrderRequest& order);

template <class Fn>
auto wrap_order_placement(SideEffectWrapper& wrapper, Fn&& fn, const OrderRequest& order,
                          CallOptions call = {}) {
  validate_order(order);
  call.fingerprint = order_fingerprint(order);
  return wrapper.execute_once(EffectType::ORDER_PLACEMENT, order_entity_id(order),
                              std::forward<Fn>(fn), call);
}

template <class Fn>
auto wrap_position_update(SideEffectWrapper& wrapper, Fn&& fn, std::string_view position_id,
                          const CallOptions& call = {}) {
  return wrapper.execute_once(EffectType::POSITION_UPDATE, position_id, std::forward<Fn>(fn), call);
}

template <class Fn>
auto wrap_pnl_write(SideEffectWrapper& wrapper, Fn&& fn, std::string_view pnl_id,
                    const CallOptions& call = {}) {
  return wrapper.execute_once(EffectType::PNL_WRITE, pnl_id, std::forward<Fn>(fn), call);
}

template <class Fn>
auto wrap_ledger_write(SideEffectWrapper& wrapper, Fn&& fn, std::string_view entry_id,
                       const CallOptions& call = {}) {
  return wrapper.execute_once(EffectType::LEDGER_WRITE, entry_id, std::forward<Fn>(fn), call);
}

template <class Fn>
auto wrap_trade_state_write(SideEffectWrapper& wrapper, Fn&& fn, std::string_view trade_id,
                            const CallOptions& call = {}) {
  return wrapper.execute_once(EffectType::TRADE_STATE_WRITE, trade_id, std::forward<Fn>(fn), call);
}

// The same functions as members, for code that passes one adapter around.
class ExecutionGuardAdapter {
 public:
  explicit ExecutionGuardAdapter(SideEffectWrapper& wrapper) : wrapper_(wrapper) {}

  template <class Fn>
  auto wrap_order_placement(Fn&& fn, const OrderRequest& order, const CallOptions& call = {}) {
    return idempotency::wrap_order_placement(wrapper_, std::forward<Fn>(fn), order, call);
  }
  template <class Fn>
  auto wrap_position_update(Fn&& fn, std::string_view id, const CallOptions& call = {}) {
    return idempotency::wrap_position_update(wrapper_, std::forward<Fn>(fn), id, call);
  }
  template <class Fn>
  auto wrap_pnl_write(Fn&& fn, std::string_view id, const CallOptions& call = {}) {
    return idempotency::wrap_pnl_write(wrapper_, std::forward<Fn>(fn), id, call);
  }
  template <class Fn>
  auto wrap_ledger_write(Fn&& fn, std::string_view id, const CallOptions& call = {}) {
    return idempotency::wrap_ledger_write(wrapper_, std::forward<Fn>(fn), id, call);
  }
  template <class Fn>
  auto wrap_trade_state_write(Fn&& fn, std::string_view id, const CallOptions& call = {}) {
    return idempotency::wrap_trade_state_write(wrapper_, std::forward<Fn>(fn), id, call);
  }

  [[nodiscard]] SideEffectWrapper& wrapper() noexcept { return wrapper_; }

 private:
  SideEffectWrapper& wrapper_;
};

}  // namespace prodsafe::idempotency
