// The seed's usage example, in C++: wrap an order placement so that running
// it twice places one order.
//
//   order_placement [REDIS_URL]
//
// Without a URL (and without $REDIS_URL) it starts a private redis-server.
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "prodsafe/embedded/redis_server.hpp"
#include "prodsafe/idempotency/execution_guard_adapter.hpp"
#include "prodsafe/idempotency/redis_effect_store.hpp"

using prodsafe::idempotency::OrderRequest;
using prodsafe::idempotency::RedisEffectStore;
using prodsafe::idempotency::SideEffectWrapper;
using prodsafe::idempotency::wrap_order_placement;

// Your order placement logic, unchanged.
std::map<std::string, std::string> place_order() {
  return {{"order_id", "12345"}, {"status", "filled"}};
}

int main(int argc, char** argv) {
  std::unique_ptr<prodsafe::embedded::RedisServer> private_redis;
  std::string url = argc > 1 ? argv[1] : (std::getenv("REDIS_URL") ? std::getenv("REDIS_URL") : "");
  if (url.empty()) {
    private_redis = std::make_unique<prodsafe::embedded::RedisServer>();
    url = private_redis->url();
  }

  auto redis_client = std::make_shared<prodsafe::redis::Client>(url);
  SideEffectWrapper wrapper(std::make_shared<RedisEffectStore>(redis_client));
  const OrderRequest order{.symbol = "BTCUSDT", .side = "buy", .quantity = 0.01, .price = 50000.0};

  for (int attempt = 1; attempt <= 2; ++attempt) {
    // Wrap the operation
    auto [executed, result] = wrap_order_placement(wrapper, place_order, order);
    if (executed) {
      std::cout << "Order placed: " << result["order_id"] << " (" << result["status"] << ")\n";
    } else {
      std::cout << "Order already placed (cached): " << result["order_id"] << " ("
                << result["status"] << ")\n";
    }
  }
  return 0;
}
