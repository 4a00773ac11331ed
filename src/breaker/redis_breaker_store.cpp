#include <fmt/format.h>

#include "breaker_reply.hpp"
#include "prodsafe/breaker/redis_breaker_store.hpp"
#include "prodsafe/breaker_lua.hpp"
#include "prodsafe/core/error.hpp"
#include "prodsafe/redis/script.hpp"
#include "redis_transition_watcher.hpp"

namespace prodsafe::breaker {
namespace {

const redis::Script& breaker_script() {
  static const redis::Script script("circuit breaker", std::string(kBreakerLua));
  return script;
}

std::string_view command_name(Command command) {
  switch (command) {
    case Command::kForceOpen:
      return "force_open";
    case Command::kForceClose:
      return "force_close";
    case Command::kDisable:
      return "disable";
    case Command::kReset:
      return "reset";
  }
  return "reset";
}

}  // namespace

RedisBreakerStore::RedisBreakerStore(std::shared_ptr<redis::Client> client)
    : client_(std::move(client)) {
  if (!client_) throw InvalidArgument("RedisBreakerStore needs a redis::Client, got null");
}

std::string RedisBreakerStore::key(std::string_view job_type) const {
  return client_->key(fmt::format("circuit:{}", job_type));
}

std::string RedisBreakerStore::channel(std::string_view job_type) const {
  return key(job_type) + ":events";
}

Snapshot RedisBreakerStore::run(std::string_view job_type, std::string_view op,
                                std::string_view argument, const BreakerRules& rules,
                                PermitId permit, std::string_view actor) {
  const std::string name = key(job_type);
  const std::string events = name + ":events";
  const std::string args[] = {std::to_string(rules.failure_threshold),
                              std::to_string(rules.time_window.count()),
                              std::to_string(rules.window_buckets),
                              fmt::format("{}", rules.failure_ratio),
                              std::to_string(rules.minimum_throughput),
                              std::to_string(rules.break_duration.count()),
                              fmt::format("{}", rules.break_multiplier),
                              std::to_string(rules.max_break_duration.count()),
                              std::to_string(rules.half_open_max_probes),
                              std::to_string(rules.max_half_open_wait.count()),
                              std::to_string(permit)};
  redis::Reply reply;
  try {
    reply =
        breaker_script().run(*client_, {name},
                             {op, argument, args[0], args[1], args[2], args[3], args[4], args[5],
                              args[6], args[7], args[8], args[9], events, args[10], actor});
  } catch (const ReplyError& error) {
    detail::rethrow_breaker_error(name, error);
  }
  return detail::decode_breaker_reply(name, reply);
}

Snapshot RedisBreakerStore::record(std::string_view job_type, Outcome outcome,
                                   const BreakerRules& rules, PermitId permit) {
  return run(job_type, "record", outcome == Outcome::kFailure ? "failure" : "success", rules,
             permit);
}

Snapshot RedisBreakerStore::acquire(std::string_view job_type, const BreakerRules& rules) {
  return run(job_type, "acquire", "", rules, kNoPermit);
}

Snapshot RedisBreakerStore::control(std::string_view job_type, Command command,
                                    const BreakerRules& rules, std::string_view actor) {
  check_actor(actor);
  return run(job_type, "control", command_name(command), rules, kNoPermit, actor);
}

Snapshot RedisBreakerStore::read(std::string_view job_type, const BreakerRules& rules) {
  return run(job_type, "read", "", rules, kNoPermit);
}

Subscription RedisBreakerStore::watch(std::string_view job_type, TransitionCallback callback) {
  return detail::watch_transitions(client_->endpoint(), client_->options(), channel(job_type),
                                   std::move(callback));
}

}  // namespace prodsafe::breaker
