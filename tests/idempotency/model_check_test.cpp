// A randomized, model-checked test of the effect-store protocol (issue 12):
// random sequences of claim, finish, renew, release, lease expiry, record loss
// (deletion, as eviction or expiry would) and Redis restarts, from several
// simulated workers holding current and stale claims, against both stores,
// each answer checked against a reference model of the protocol:
//   - at most one live holder per record; a claim is granted only when the
//     model says the record is free, expired or released;
//   - no finish, renewal or release from a superseded claim;
//   - a completed result is never replaced;
//   - tokens grow, also across the loss of a record.
// A fixed set of seeds runs in `make test`; PRODSAFE_MODEL_SEEDS=<n> (and
// PRODSAFE_MODEL_FIRST_SEED) runs more (`make chaos` runs thousands). A
// failure names its seed and the operations that led to it.
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "model_stores.hpp"
#include "prodsafe/idempotency/side_effect_wrapper.hpp"
#include "store_harness.hpp"
#include "support/failing_effect_store.hpp"

namespace prodsafe::idempotency {
namespace {

using namespace std::chrono_literals;
using prodsafe::testing::model_seeds;
using prodsafe::testing::ModelMemoryStore;
using prodsafe::testing::ModelRedisStore;

constexpr int kWorkers = 4;
constexpr int kKeys = 3;
constexpr int kOperations = 250;
constexpr auto kLease = 10s;
constexpr auto kTtl = 24h;

// What the protocol says a record is.
struct KeyModel {
  enum class State { kNone, kInProgress, kReleased, kCompleted, kUnavailable };
  State state = State::kNone;
  Holder holder{};
  bool lease_live = false;
  std::string payload{};
  std::uint64_t max_token = 0;  // the highest token the store issued for the key
  // Written anew by its holder's renewal after it was lost: its token is that
  // holder's, maybe below tokens issued meanwhile.
  bool revived = false;
};

const char* state_name(KeyModel::State state) {
  switch (state) {
    case KeyModel::State::kNone:
      return "none";
    case KeyModel::State::kInProgress:
      return "in_progress";
    case KeyModel::State::kReleased:
      return "released";
    case KeyModel::State::kCompleted:
      return "completed";
    case KeyModel::State::kUnavailable:
      return "unavailable";
  }
  return "?";
}

bool same(const Holder& a, const Holder& b) { return a.token == b.token && a.id == b.id; }

template <class Store>
class ModelCheck {
 public:
  ModelCheck(Store& target, std::uint64_t seed) : target_(target), random_(seed), seed_(seed) {}

  void run() {
    for (int step = 0; step < kOperations && !::testing::Test::HasFailure(); ++step) {
      const int dice = pick(100);
      const int worker = pick(kWorkers);
      const std::string key = fmt::format("effect:MODEL:{}", pick(kKeys));
      if (dice < 30) {
        claim(worker, key);
      } else if (dice < 50) {
        finish(worker, key);
      } else if (dice < 62) {
        renew(worker, key);
      } else if (dice < 72) {
        release(worker, key);
      } else if (dice < 82) {
        expire_leases();
      } else if (dice < 88) {
        lose(key);
      } else if (dice < 89 && target_.can_restart() && !restarted_) {
        restarted_ = true;
        log("restart");
        target_.restart();
      } else {
        inspect(key);
      }
    }
    for (int k = 0; k < kKeys; ++k) inspect(fmt::format("effect:MODEL:{}", k));
  }

 private:
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(random_); }

  void log(const std::string& line) { history_ << line << '\n'; }
  std::string where() const {
    return fmt::format("seed {} ({}), after:\n{}", seed_, Store::kName, history_.str());
  }

  // A claim this worker got for `key` at some time: current or stale.
  std::optional<Holder> some_holder(int worker, const std::string& key) {
    auto& held = holders_[{worker, key}];
    if (held.empty()) return std::nullopt;
    if (pick(4) == 0) return held[pick(static_cast<int>(held.size()))];
    return held.back();
  }

  void claim(int worker, const std::string& key) {
    KeyModel& model = models_[key];
    const Claim claim = target_.store().claim(key, "", kLease, kTtl);
    log(fmt::format("w{} claim {} -> status {} token {}", worker, key,
                    static_cast<int>(claim.status), claim.token));
    using S = KeyModel::State;
    switch (model.state) {
      case S::kNone:
        ASSERT_EQ(claim.status, ClaimStatus::kClaimed) << where();
        ASSERT_GT(claim.token, model.max_token)
            << "tokens must grow across record loss; " << where();
        break;
      case S::kInProgress:
        if (model.lease_live) {
          ASSERT_EQ(claim.status, ClaimStatus::kInProgress) << "two live holders; " << where();
          ASSERT_EQ(claim.token, model.holder.token) << where();
          return;
        }
        [[fallthrough]];
      case S::kReleased:
        ASSERT_EQ(claim.status, ClaimStatus::kRecovered) << where();
        if (model.revived) {
          ASSERT_GT(claim.token, model.max_token)
              << "a revived record's recovery must not reuse a token; " << where();
        } else {
          ASSERT_EQ(claim.token, model.holder.token + 1) << where();
        }
        break;
      case S::kCompleted:
        ASSERT_EQ(claim.status, ClaimStatus::kCompleted) << where();
        ASSERT_EQ(claim.payload, model.payload) << where();
        ASSERT_EQ(claim.token, model.holder.token) << where();
        return;
      case S::kUnavailable:
        ASSERT_EQ(claim.status, ClaimStatus::kUnavailable) << where();
        ASSERT_EQ(claim.payload, model.payload) << where();
        return;
    }
    ASSERT_FALSE(claim.holder_id.empty()) << where();
    ASSERT_TRUE(holder_ids_.insert(claim.holder_id).second) << "a holder id repeated; " << where();
    model.state = S::kInProgress;
    model.holder = claim.holder();
    model.lease_live = true;
    model.revived = false;
    model.max_token = std::max(model.max_token, claim.token);
    holders_[{worker, key}].push_back(claim.holder());
  }

  void finish(int worker, const std::string& key) {
    const auto holder = some_holder(worker, key);
    if (!holder) return;
    const bool unavailable = pick(8) == 0;
    const std::string payload = fmt::format("result-{}-{}", worker, ++results_);
    KeyModel& model = models_[key];
    const FinishStatus status = target_.store().finish(
        key, *holder, unavailable ? FinalState::kUnavailable : FinalState::kCompleted, payload, "",
        kTtl);
    log(fmt::format("w{} finish {} token {} {} -> {}", worker, key, holder->token,
                    unavailable ? "unavailable" : "completed",
                    status == FinishStatus::kDone ? "done" : "lease_lost"));
    using S = KeyModel::State;
    const S final_state = unavailable ? S::kUnavailable : S::kCompleted;
    if (model.state == S::kNone) {
      // The record vanished and was not claimed since: written anew.
      ASSERT_EQ(status, FinishStatus::kDone) << where();
      model = KeyModel{final_state, *holder, false, payload, model.max_token};
      return;
    }
    const bool holds = same(model.holder, *holder);
    if (holds && model.state == S::kInProgress) {
      ASSERT_EQ(status, FinishStatus::kDone) << where();
      model.state = final_state;
      model.payload = payload;
      model.lease_live = false;
      return;
    }
    if (holds && model.state == final_state) {
      ASSERT_EQ(status, FinishStatus::kDone) << "a repeated finish is acknowledged; " << where();
      return;  // and the first payload stays
    }
    ASSERT_EQ(status, FinishStatus::kLeaseLost)
        << "a superseded claim finished, or a result was replaced; " << where();
  }

  void renew(int worker, const std::string& key) {
    const auto holder = some_holder(worker, key);
    if (!holder) return;
    KeyModel& model = models_[key];
    const bool renewed = target_.store().renew(key, *holder, kLease, kTtl, "");
    log(fmt::format("w{} renew {} token {} -> {}", worker, key, holder->token, renewed));
    using S = KeyModel::State;
    if (model.state == S::kNone) {
      ASSERT_TRUE(renewed) << "a vanished record is written anew for its holder; " << where();
      model = KeyModel{S::kInProgress, *holder, true, "", model.max_token, true};
      return;
    }
    const bool expected = model.state == S::kInProgress && same(model.holder, *holder);
    ASSERT_EQ(renewed, expected) << where();
    if (renewed) model.lease_live = true;
  }

  void release(int worker, const std::string& key) {
    const auto holder = some_holder(worker, key);
    if (!holder) return;
    KeyModel& model = models_[key];
    const bool released = target_.store().release(key, *holder);
    log(fmt::format("w{} release {} token {} -> {}", worker, key, holder->token, released));
    const bool expected =
        model.state == KeyModel::State::kInProgress && same(model.holder, *holder);
    ASSERT_EQ(released, expected) << where();
    if (released) {
      model.state = KeyModel::State::kReleased;
      model.lease_live = false;
    }
  }

  void expire_leases() {
    log("every lease expires");
    std::vector<std::string> keys;
    for (auto& [key, model] : models_) {
      keys.push_back(key);
      model.lease_live = false;
    }
    target_.expire_leases(keys, kLease);
  }

  void lose(const std::string& key) {
    log(fmt::format("lose {}", key));
    KeyModel& model = models_[key];
    ASSERT_EQ(target_.store().clear(key), model.state != KeyModel::State::kNone) << where();
    model = KeyModel{.max_token = model.max_token};
  }

  void inspect(const std::string& key) {
    const KeyModel& model = models_[key];
    const auto record = target_.store().inspect(key);
    if (model.state == KeyModel::State::kNone) {
      ASSERT_FALSE(record) << key << " should not exist; " << where();
      return;
    }
    ASSERT_TRUE(record) << key << " vanished; " << where();
    EXPECT_EQ(record->state, state_name(model.state)) << key << "; " << where();
    EXPECT_EQ(record->token, model.holder.token) << key << "; " << where();
    EXPECT_EQ(record->holder_id, model.holder.id) << key << "; " << where();
    if (model.state == KeyModel::State::kCompleted) {
      EXPECT_EQ(record->result, model.payload) << key << "; " << where();
    }
  }

  Store& target_;
  std::mt19937_64 random_;
  std::uint64_t seed_;
  std::map<std::string, KeyModel> models_;
  std::map<std::pair<int, std::string>, std::vector<Holder>> holders_;
  std::set<std::string> holder_ids_;
  int results_ = 0;
  bool restarted_ = false;
  std::ostringstream history_;
};

// The same, one level up: several wrappers (workers) sharing a store and a
// journal directory, with the result cache on or off, commits that fail
// (unreachable, OOM), claims that fail, effects that throw, leases that expire
// and records that are lost. Checked at the end, after the faults stop and
// every journal is flushed:
//   - an effect runs again only when something excuses it: its previous run
//     threw, its record was lost, or its lease expired while in progress;
//   - every result an effect returned is the stored one, or was reported as
//     superseded (LeaseLost), or its record was lost afterwards;
//   - every duplicate was answered with a result the effect returned;
//   - no journal keeps anything.
template <class Store>
class WrapperModelCheck {
 public:
  WrapperModelCheck(Store& target, std::uint64_t seed)
      : target_(target),
        faulty_(std::make_shared<prodsafe::testing::FailingEffectStore>(target.shared())),
        random_(seed),
        seed_(seed) {
    for (int w = 0; w < kWorkers; ++w) {
      wrappers_.push_back(std::make_unique<SideEffectWrapper>(
          faulty_, WrapperOptions{.ttl = kTtl,
                                  .lease = kLease,
                                  .renew_leases = false,
                                  .commit_attempts = 2,
                                  .commit_retry_delay = 1ms,
                                  .journal_directory = journal_.path().string(),
                                  .journal_flush_interval = 1h,
                                  .journal_scan_interval = 0ms,
                                  .result_cache_size = pick(2) == 0 ? 0u : 8u,
                                  .clock = target.clock()}));
    }
  }

  void run() {
    for (int step = 0; step < kOperations; ++step) {
      const int dice = pick(100);
      const std::string id = std::to_string(pick(kKeys));
      if (dice < 55) {
        call(pick(kWorkers), id);
      } else if (dice < 65) {
        faulty_->fail_commits = 1 + pick(3);
        log("the next commits fail: unreachable");
      } else if (dice < 70) {
        refuse_next_commit_ = true;
        log("the next commit is refused: OOM");
      } else if (dice < 74) {
        faulty_->fail_claims = 1;
        log("the next claim fails");
      } else if (dice < 82) {
        expire_leases();
      } else if (dice < 86) {
        lose(id);
      } else {
        const int w = pick(kWorkers);
        log(fmt::format("w{} flushes its journal", w));
        wrappers_[w]->flush_journal();
      }
    }
    settle();
  }

 private:
  struct Execution {
    std::string result;
    bool returned = false;
    bool lease_lost = false;
    int epoch = 0;  // how many times the record was lost before it returned
  };
  struct KeyLog {
    std::vector<Execution> executions;
    int excuses = 0;
    int epoch = 0;
    std::set<std::string> answers;  // what duplicates were answered with
  };

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(random_); }
  void log(const std::string& line) { history_ << line << '\n'; }
  std::string where() const {
    return fmt::format("seed {} ({}), after:\n{}", seed_, Store::kName, history_.str());
  }
  static std::string key_of(const std::string& id) { return "effect:MODEL:" + id; }

  void call(int w, const std::string& id) {
    KeyLog& key = keys_[id];
    const int dice = pick(100);
    const std::string result = fmt::format("r{}", ++results_);
    faulty_->before_commit = [this] {
      if (std::exchange(refuse_next_commit_, false)) {
        throw ReplyError("OOM command not allowed when used memory > 'maxmemory'.", "finish");
      }
    };
    std::size_t index = 0;
    const auto effect = [&]() -> std::string {
      index = key.executions.size();
      key.executions.push_back({result, false, false, key.epoch});
      if (dice < 8) throw Timeout("the exchange did not answer");
      if (dice < 12) throw std::runtime_error("the exchange said no");
      key.executions[index].returned = true;
      return result;
    };
    try {
      const auto outcome = wrappers_[w]->execute_once(EffectType::custom("MODEL"), id, effect);
      log(fmt::format("w{} call {} -> executed {} result {} pending {} cache {}", w, id,
                      outcome.executed, outcome.result, outcome.commit_pending,
                      outcome.from_cache));
      if (!outcome.executed) key.answers.insert(outcome.result);
    } catch (const LeaseLost&) {
      log(fmt::format("w{} call {} -> LeaseLost", w, id));
      key.executions[index].lease_lost = true;
      ++reported_lost_;
    } catch (const std::exception& error) {
      log(fmt::format("w{} call {} -> {}", w, id, error.what()));
      if (!key.executions.empty() && index == key.executions.size() - 1 &&
          !key.executions[index].returned && key.executions[index].result == result) {
        ++key.excuses;  // the run threw: the next one may run it again
      }
    }
  }

  void expire_leases() {
    log("every lease expires");
    std::vector<std::string> keys;
    for (int k = 0; k < kKeys; ++k) {
      const std::string id = std::to_string(k);
      keys.push_back(key_of(id));
      const auto record = target_.store().inspect(key_of(id));
      if (record && record->state == "in_progress") ++keys_[id].excuses;
    }
    target_.expire_leases(keys, kLease);
  }

  void lose(const std::string& id) {
    log(fmt::format("lose {}", id));
    target_.store().clear(key_of(id));
    ++keys_[id].excuses;
    ++keys_[id].epoch;
  }

  void settle() {
    faulty_->fail_commits = 0;
    faulty_->fail_claims = 0;
    refuse_next_commit_ = false;
    std::uint64_t lost_in_stats = 0;
    for (auto& wrapper : wrappers_) {
      EXPECT_EQ(wrapper->flush_journal(), 0u) << where();
      lost_in_stats += wrapper->stats().lease_lost;
    }
    std::uint64_t unexplained = 0;
    for (const auto& [id, key] : keys_) {
      EXPECT_LE(static_cast<int>(key.executions.size()), 1 + key.excuses)
          << "effect " << id << " ran again without an excuse; " << where();
      std::set<std::string> returned;
      for (const Execution& execution : key.executions) {
        if (execution.returned) returned.insert(execution.result);
      }
      for (const std::string& answer : key.answers) {
        EXPECT_TRUE(returned.contains(answer)) << "effect " << id << " answered '" << answer
                                               << "', which no run returned; " << where();
      }
      const auto record = target_.store().inspect(key_of(id));
      for (const Execution& execution : key.executions) {
        if (!execution.returned || execution.lease_lost) continue;
        const bool stored =
            record && record->state == "completed" && record->result == execution.result;
        const bool lost_later = execution.epoch < key.epoch;
        if (!stored && !lost_later) ++unexplained;
      }
    }
    // A returned result that is neither stored nor reported LeaseLost to its
    // caller must have been reported LeaseLost when its journal was flushed.
    EXPECT_LE(unexplained, lost_in_stats - reported_lost_)
        << "a result was dropped without a LeaseLost; " << where();
  }

  Store& target_;
  std::shared_ptr<prodsafe::testing::FailingEffectStore> faulty_;
  prodsafe::testing::TempDir journal_;
  std::mt19937_64 random_;
  std::uint64_t seed_;
  std::vector<std::unique_ptr<SideEffectWrapper>> wrappers_;
  std::map<std::string, KeyLog> keys_;
  bool refuse_next_commit_ = false;
  std::uint64_t reported_lost_ = 0;
  int results_ = 0;
  std::ostringstream history_;
};

template <class Store>
class ModelCheckTest : public ::testing::Test {};
using ModelStores = ::testing::Types<ModelMemoryStore, ModelRedisStore>;
struct ModelStoreNames {
  template <class T>
  static std::string GetName(int) {
    return T::kName;
  }
};
TYPED_TEST_SUITE(ModelCheckTest, ModelStores, ModelStoreNames);

TYPED_TEST(ModelCheckTest, RandomOperationsFollowTheProtocol) {
  for (const std::uint64_t seed : model_seeds(12)) {
    TypeParam target(seed);
    ModelCheck<TypeParam> check(target, seed);
    check.run();
    if (::testing::Test::HasFailure()) {
      std::fprintf(stderr, "model check failed with seed %llu (%s)\n",
                   static_cast<unsigned long long>(seed), TypeParam::kName);
      return;
    }
  }
}

TYPED_TEST(ModelCheckTest, RandomCallsUnderFaultsRunOnceOrExcusedAndLoseNothing) {
  for (const std::uint64_t seed : model_seeds(12)) {
    TypeParam target(seed);
    WrapperModelCheck<TypeParam> check(target, seed);
    check.run();
    if (::testing::Test::HasFailure()) {
      std::fprintf(stderr, "wrapper model check failed with seed %llu (%s)\n",
                   static_cast<unsigned long long>(seed), TypeParam::kName);
      return;
    }
  }
}

}  // namespace
}  // namespace prodsafe::idempotency
