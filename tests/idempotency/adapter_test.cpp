// The non-invasive adapters and order identity.
#include "prodsafe/idempotency/execution_guard_adapter.hpp"

#include <gtest/gtest.h>

#include "store_harness.hpp"

namespace prodsafe::idempotency {
namespace {

using prodsafe::testing::MemoryHarness;

// A user's function, untouched: it knows nothing of prodsafe.
struct Fill {
  std::string order_id;
  std::string status;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Fill, order_id, status)
};

class AdapterTest : public ::testing::Test {
 protected:
  MemoryHarness harness;
  SideEffectWrapper wrapper{harness.store(), harness.wrapper_options()};
  int placed = 0;
  Fill place_order() {
    ++placed;
    return Fill{"ord-" + std::to_string(placed), "filled"};
  }
};

const OrderRequest kOrder{.symbol = "BTCUSDT", .side = "buy", .quantity = 0.01, .price = 50000.0};

TEST_F(AdapterTest, IdenticalOrdersWithoutClientIdAreOneOrder) {
  auto [executed, fill] = wrap_order_placement(
      wrapper, [&] { return place_order(); }, kOrder);
  EXPECT_TRUE(executed);
  EXPECT_EQ(fill.order_id, "ord-1");
  auto again = wrap_order_placement(
      wrapper, [&] { return place_order(); }, kOrder);
  EXPECT_FALSE(again.executed);
  EXPECT_EQ(again.result.order_id, "ord-1");
  EXPECT_EQ(again.key, "effect:ORDER_PLACEMENT:" + order_entity_id(kOrder));
  EXPECT_EQ(placed, 1);
}

TEST_F(AdapterTest, CanonicalFormIgnoresCaseOfSymbolAndSide) {
  OrderRequest shouted = kOrder;
  shouted.symbol = "btcusdt";
  shouted.side = "BUY";
  EXPECT_EQ(canonical_order(kOrder), "symbol=BTCUSDT;side=buy;quantity=0.01;price=50000");
  EXPECT_EQ(order_fingerprint(shouted), order_fingerprint(kOrder));
  OrderRequest market = kOrder;
  market.price.reset();
  EXPECT_EQ(canonical_order(market), "symbol=BTCUSDT;side=buy;quantity=0.01;price=market");
  OrderRequest more = kOrder;
  more.quantity = 0.02;
  EXPECT_NE(order_entity_id(more), order_entity_id(kOrder));
}

TEST_F(AdapterTest, ClientOrderIdIsTheEntityAndReuseWithOtherFieldsConflicts) {
  OrderRequest first = kOrder;
  first.client_order_id = "my-id-1";
  OrderRequest second = first;  // the same order placed twice on purpose needs its own id
  second.client_order_id = "my-id-2";
  EXPECT_TRUE(wrap_order_placement(
                  wrapper, [&] { return place_order(); }, first)
                  .executed);
  EXPECT_TRUE(wrap_order_placement(
                  wrapper, [&] { return place_order(); }, second)
                  .executed);
  OrderRequest reused = first;
  reused.quantity = 5;
  EXPECT_THROW(wrap_order_placement(
                   wrapper, [&] { return place_order(); }, reused),
               Conflict);
  EXPECT_EQ(placed, 2);
}

TEST_F(AdapterTest, InvalidOrdersAreRefusedBeforeAnythingRuns) {
  auto fn = [&] { return place_order(); };
  EXPECT_THROW(
      wrap_order_placement(wrapper, fn, OrderRequest{.symbol = "", .side = "buy", .quantity = 1}),
      InvalidArgument);
  EXPECT_THROW(
      wrap_order_placement(wrapper, fn, OrderRequest{.symbol = "X", .side = "hold", .quantity = 1}),
      InvalidArgument);
  EXPECT_THROW(
      wrap_order_placement(wrapper, fn, OrderRequest{.symbol = "X", .side = "buy", .quantity = 0}),
      InvalidArgument);
  EXPECT_THROW(
      wrap_order_placement(wrapper, fn,
                           OrderRequest{.symbol = "X",
                                        .side = "buy",
                                        .quantity = 1,
                                        .price = std::numeric_limits<double>::quiet_NaN()}),
      InvalidArgument);
  EXPECT_EQ(placed, 0);
}

TEST_F(AdapterTest, EveryWrapperUsesItsEffectType) {
  ExecutionGuardAdapter adapter(wrapper);
  int runs = 0;
  auto fn = [&] { return ++runs; };
  EXPECT_EQ(adapter.wrap_position_update(fn, "7").key, "effect:POSITION_UPDATE:7");
  EXPECT_EQ(adapter.wrap_pnl_write(fn, "7").key, "effect:PNL_WRITE:7");
  EXPECT_EQ(adapter.wrap_ledger_write(fn, "7").key, "effect:LEDGER_WRITE:7");
  EXPECT_EQ(adapter.wrap_trade_state_write(fn, "7").key, "effect:TRADE_STATE_WRITE:7");
  EXPECT_EQ(adapter.wrap_order_placement(fn, kOrder).key,
            "effect:ORDER_PLACEMENT:" + order_entity_id(kOrder));
  EXPECT_EQ(runs, 5);
  EXPECT_FALSE(adapter.wrap_ledger_write(fn, "7").executed);
}

}  // namespace
}  // namespace prodsafe::idempotency
