// The baseline every Redis benchmark is measured against: a raw hiredis PING
// (one round trip, RTT) to the same server, in the same run.
#pragma once

#include <chrono>
#include <functional>

#include <benchmark/benchmark.h>

struct redisContext;

namespace prodsafe::bench {

// A raw hiredis connection to 127.0.0.1:port; null (and the state skipped)
// when it cannot connect.
class RawConnection {
 public:
  RawConnection(benchmark::State& state, int port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  explicit operator bool() const noexcept { return context_ != nullptr; }
  // One redisCommand(ctx, "PING"); false when it failed.
  bool ping();

 private:
  redisContext* context_ = nullptr;
};

// Runs redisCommand(ctx, "PING") once per iteration against 127.0.0.1:port.
void raw_hiredis_ping(benchmark::State& state, int port);

// Alternates one raw PING and one `operation` per iteration and reports the
// counters "rtt_ns", "op_ns" and "ratio" (op / rtt). Pairing them in one loop
// keeps drifts in machine load (two cores shared with the server) out of the
// ratio.
void paired_with_rtt(benchmark::State& state, int port, const std::function<void()>& operation);

}  // namespace prodsafe::bench
