// The baseline every Redis benchmark is measured against: a raw hiredis PING
// (one round trip) to the same server, in the same run.
#pragma once

#include <benchmark/benchmark.h>

namespace prodsafe::bench {

// Runs redisCommand(ctx, "PING") once per iteration against 127.0.0.1:port.
void raw_hiredis_ping(benchmark::State& state, int port);

}  // namespace prodsafe::bench
