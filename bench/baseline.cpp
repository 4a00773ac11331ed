#include "baseline.hpp"

#include <hiredis/hiredis.h>

namespace prodsafe::bench {

void raw_hiredis_ping(benchmark::State& state, int port) {
  redisContext* context = redisConnect("127.0.0.1", port);
  if (context == nullptr || context->err != 0) {
    state.SkipWithError("cannot connect");
    if (context != nullptr) redisFree(context);
    return;
  }
  for (auto _ : state) {
    auto* reply = static_cast<redisReply*>(redisCommand(context, "PING"));
    if (reply == nullptr) {
      state.SkipWithError("PING failed");
      break;
    }
    benchmark::DoNotOptimize(reply->type);
    freeReplyObject(reply);
  }
  redisFree(context);
}

}  // namespace prodsafe::bench
