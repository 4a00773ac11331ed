#include "prodsafe/idempotency/execution_guard_adapter.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <fmt/format.h>

#include "prodsafe/core/sha1.hpp"

namespace prodsafe::idempotency {
namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return text;
}

void require_positive(double value, const char* field) {
  if (!std::isfinite(value) || value <= 0) {
    throw InvalidArgument(fmt::format("order {} must be a positive number, got {}", field, value));
  }
}

}  // namespace

void validate_order(const OrderRequest& order) {
  if (order.symbol.empty()) throw InvalidArgument("order symbol is empty");
  const std::string side = lower(order.side);
  if (side != "buy" && side != "sell") {
    throw InvalidArgument(fmt::format("order side must be 'buy' or 'sell', got '{}'", order.side));
  }
  require_positive(order.quantity, "quantity");
  if (order.price) require_positive(*order.price, "price");
  if (order.client_order_id) validate_entity_id(*order.client_order_id);
}

std::string canonical_order(const OrderRequest& order) {
  return fmt::format("symbol={};side={};quantity={};price={}", upper(order.symbol),
                     lower(order.side), order.quantity,
                     order.price ? fmt::format("{}", *order.price) : std::string("market"));
}

std::string order_fingerprint(const OrderRequest& order) {
  return sha1_hex(canonical_order(order));
}

std::string order_entity_id(const OrderRequest& order) {
  if (order.client_order_id) return *order.client_order_id;
  return "h-" + order_fingerprint(order);
}

}  // namespace prodsafe::idempotency
