// Test-only: a SideEffectWrapper over one of the stores (store_harness.hpp)
// behind a FailingEffectStore, so a typed test injects failures the same way
// against both.
#pragma once

#include <chrono>
#include <memory>

#include <gtest/gtest.h>

#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "store_harness.hpp"
#include "support/failing_effect_store.hpp"

namespace prodsafe::testing {

template <class Harness>
class WrapperFixture : public ::testing::Test {
 protected:
  Harness harness;
  std::shared_ptr<FailingEffectStore> store = std::make_shared<FailingEffectStore>(harness.store());

  // The harness's options with its short lease and 1 ms between commit attempts.
  idempotency::WrapperOptions options() {
    idempotency::WrapperOptions options = harness.wrapper_options();
    options.lease = Harness::lease();
    options.commit_retry_delay = std::chrono::milliseconds(1);
    return options;
  }
  std::unique_ptr<idempotency::SideEffectWrapper> make(idempotency::WrapperOptions options) {
    return std::make_unique<idempotency::SideEffectWrapper>(store, std::move(options));
  }
  std::unique_ptr<idempotency::SideEffectWrapper> make() { return make(options()); }
};

}  // namespace prodsafe::testing
