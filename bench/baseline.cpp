#include "baseline.hpp"

#include <hiredis/hiredis.h>

namespace prodsafe::bench {

RawConnection::RawConnection(benchmark::State& state, int port)
    : context_(redisConnect("127.0.0.1", port)) {
  if (context_ != nullptr && context_->err == 0) return;
  state.SkipWithError("cannot connect to Redis");
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
}

RawConnection::~RawConnection() {
  if (context_ != nullptr) redisFree(context_);
}

bool RawConnection::ping() {
  auto* reply = static_cast<redisReply*>(redisCommand(context_, "PING"));
  if (reply == nullptr) return false;
  benchmark::DoNotOptimize(reply->type);
  freeReplyObject(reply);
  return true;
}

void raw_hiredis_ping(benchmark::State& state, int port) {
  RawConnection raw(state, port);
  if (!raw) return;
  for (auto _ : state) {
    if (!raw.ping()) {
      state.SkipWithError("PING failed");
      break;
    }
  }
}

void paired_with_rtt(benchmark::State& state, int port, const std::function<void()>& operation) {
  using Clock = std::chrono::steady_clock;
  RawConnection raw(state, port);
  if (!raw) return;
  Clock::duration rtt{};
  Clock::duration op{};
  for (auto _ : state) {
    const auto start = Clock::now();
    if (!raw.ping()) {
      state.SkipWithError("PING failed");
      break;
    }
    const auto middle = Clock::now();
    operation();
    op += Clock::now() - middle;
    rtt += middle - start;
  }
  const double iterations = static_cast<double>(state.iterations());
  if (iterations == 0 || rtt.count() == 0) return;
  const double rtt_ns = std::chrono::duration<double, std::nano>(rtt).count() / iterations;
  const double op_ns = std::chrono::duration<double, std::nano>(op).count() / iterations;
  state.counters["rtt_ns"] = rtt_ns;
  state.counters["op_ns"] = op_ns;
  state.counters["ratio"] = op_ns / rtt_ns;
}

}  // namespace prodsafe::bench
