#include "prodsafe/idempotency/redis_effect_store.hpp"

#include <algorithm>
#include <charconv>
#include <vector>

#include <fmt/format.h>

#include "prodsafe/core/error.hpp"
#include "prodsafe/core/random.hpp"
#include "prodsafe/idempotency_lua.hpp"
#include "prodsafe/redis/info.hpp"
#include "prodsafe/redis/script.hpp"
#include "redis_effect_reply.hpp"

namespace prodsafe::idempotency {
namespace {

using std::chrono::milliseconds;

const redis::Script& claim_script() {
  static const redis::Script script("effect claim", std::string(kClaimLua));
  return script;
}
const redis::Script& finish_script() {
  static const redis::Script script("effect finish", std::string(kFinishLua));
  return script;
}
const redis::Script& lease_script() {
  static const redis::Script script("effect lease", std::string(kLeaseLua));
  return script;
}

[[noreturn]] void corrupt(std::string_view key, std::string_view why) {
  throw DecodeError(fmt::format(
      "effect record '{}' is not valid: {}; inspect it with redis-cli HGETALL, and delete it "
      "only if you know the effect's real outcome",
      key, why));
}

std::uint64_t parse_u64(std::string_view key, std::string_view field, std::string_view text) {
  std::uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    corrupt(key, fmt::format("field '{}' is '{}', not a number", field, text));
  }
  return value;
}

const std::vector<redis::Reply>& reply_array(std::string_view key, const redis::Reply& reply,
                                             std::size_t size) {
  if (reply.type() != redis::Reply::Type::kArray || reply.array().size() < size) {
    throw ProtocolError(fmt::format("unexpected reply from an effect script for '{}': {}", key,
                                    reply.debug_string()));
  }
  return reply.array();
}

std::string ms_text(milliseconds duration) { return std::to_string(duration.count()); }

}  // namespace

namespace detail {

bool redis_version_at_least(std::string_view version, int major, int minor) {
  int found_major = 0;
  int found_minor = 0;
  const char* end = version.data() + version.size();
  auto [after_major, major_error] = std::from_chars(version.data(), end, found_major);
  if (major_error != std::errc()) return false;
  if (after_major != end && *after_major == '.') {
    auto [after_minor, minor_error] = std::from_chars(after_major + 1, end, found_minor);
    if (minor_error != std::errc()) found_minor = 0;
    (void)after_minor;
  }
  return found_major > major || (found_major == major && found_minor >= minor);
}

Claim decode_claim_reply(std::string_view key, std::string_view full_key, const redis::Reply& reply,
                         std::string holder_id) {
  const auto& parts = reply_array(key, reply, 5);
  const std::string& status = parts[0].str();
  Claim claim;
  claim.token = static_cast<std::uint64_t>(parts[1].integer());
  claim.payload = parts[2].str();
  claim.fingerprint = parts[3].str();
  claim.ttl_remaining = milliseconds(std::max<long long>(0, parts[4].integer()));
  if (status == "CLAIMED" || status == "RECOVERED") {
    claim.status = status == "CLAIMED" ? ClaimStatus::kClaimed : ClaimStatus::kRecovered;
    claim.holder_id = std::move(holder_id);
  } else if (status == "COMPLETED") {
    claim.status = ClaimStatus::kCompleted;
  } else if (status == "UNAVAILABLE") {
    claim.status = ClaimStatus::kUnavailable;
  } else if (status == "IN_PROGRESS") {
    claim.status = ClaimStatus::kInProgress;
    claim.retry_after = milliseconds(parse_u64(key, "lease_until", claim.payload));
    claim.payload.clear();
  } else if (status == "CONFLICT") {
    claim.status = ClaimStatus::kConflict;
  } else if (status == "FAILED") {
    claim.status = ClaimStatus::kFailed;
  } else if (status == "CORRUPT") {
    corrupt(full_key, claim.payload);
  } else {
    throw ProtocolError(
        fmt::format("effect claim for '{}' returned unknown status '{}'", key, status));
  }
  return claim;
}

FinishStatus decode_finish_reply(std::string_view key, std::string_view full_key,
                                 const redis::Reply& reply) {
  const auto& parts = reply_array(key, reply, 2);
  const std::string& status = parts[0].str();
  if (status == "DONE") return FinishStatus::kDone;
  if (status == "LEASE_LOST") return FinishStatus::kLeaseLost;
  if (status == "CORRUPT") corrupt(full_key, parts[1].str());
  throw ProtocolError(
      fmt::format("effect finish for '{}' returned unknown status '{}'", key, status));
}

std::optional<EffectRecord> decode_inspect_replies(std::string_view full_key,
                                                   const std::vector<redis::Reply>& replies) {
  // A short answer (a proxy, another server) is not read past its end.
  auto wrong_shape = [&](std::string_view what) {
    return ProtocolError(
        fmt::format("unexpected answer reading the effect record '{}': {}", full_key, what));
  };
  if (replies.size() < 4) throw wrong_shape(fmt::format("{} replies, not 4", replies.size()));
  const std::string& kind = replies[0].check().str();
  if (kind == "none") return std::nullopt;
  if (kind != "hash") corrupt(full_key, fmt::format("the key holds a {}, not a hash", kind));
  const auto& fields = replies[1].check().array();
  if (fields.size() < 7) throw wrong_shape(fmt::format("{} fields, not 7", fields.size()));
  EffectRecord record;
  record.state = fields[0].optional_str().value_or("");
  record.token = parse_u64(full_key, "token", fields[1].optional_str().value_or(""));
  record.fingerprint = fields[2].optional_str().value_or("");
  record.result = fields[3].optional_str().value_or("");
  record.error = fields[4].optional_str().value_or("");
  record.holder_id = fields[6].optional_str().value_or("");
  record.ttl_remaining = milliseconds(std::max<long long>(0, replies[2].integer()));
  const auto lease_until = fields[5].optional_str();
  if (record.state == "in_progress" && lease_until) {
    const auto& time = replies[3].array();
    if (time.size() < 2) throw wrong_shape(replies[3].debug_string());
    const std::uint64_t now_ms = parse_u64(full_key, "TIME", time[0].str()) * 1000 +
                                 parse_u64(full_key, "TIME", time[1].str()) / 1000;
    const std::uint64_t until = parse_u64(full_key, "lease_until", *lease_until);
    record.lease_remaining = milliseconds(until > now_ms ? until - now_ms : 0);
  }
  return record;
}

}  // namespace detail

RedisEffectStore::RedisEffectStore(std::shared_ptr<redis::Client> client)
    : client_(std::move(client)) {
  if (!client_) throw InvalidArgument("RedisEffectStore needs a redis::Client, got null");
}

Claim RedisEffectStore::claim(std::string_view key, std::string_view fingerprint,
                              milliseconds lease, milliseconds ttl) {
  const std::string full_key = client_->key(key);
  const std::string lease_ms = ms_text(lease);
  const std::string ttl_ms = ms_text(ttl);
  std::string holder_id = random_id();
  const redis::Reply reply =
      claim_script().run(*client_, {full_key}, {fingerprint, lease_ms, ttl_ms, holder_id});
  return detail::decode_claim_reply(key, full_key, reply, std::move(holder_id));
}

FinishStatus RedisEffectStore::finish(std::string_view key, const Holder& holder, FinalState state,
                                      std::string_view payload, std::string_view fingerprint,
                                      milliseconds ttl) {
  const std::string full_key = client_->key(key);
  const std::string token_text = std::to_string(holder.token);
  const std::string ttl_ms = ms_text(ttl);
  const redis::Reply reply =
      finish_script().run(*client_, {full_key},
                          {token_text, holder.id, to_string(state), payload, fingerprint, ttl_ms});
  return detail::decode_finish_reply(key, full_key, reply);
}

std::pair<redis::Reply, int> RedisEffectStore::run_and_wait(const redis::Script& script,
                                                            std::string_view key,
                                                            std::span<const std::string_view> args,
                                                            const Durability& durability) {
  if (durability.aof) require_waitaof();
  const std::string replicas = std::to_string(durability.replicas);
  const std::string timeout = std::to_string(durability.timeout.count());
  const std::string_view keys[] = {key};
  std::vector<redis::Reply> replies;
  for (const bool with_source : {false, true}) {
    redis::Pipeline pipeline;
    script.add_to(pipeline, keys, args, with_source);
    if (durability.aof) {
      pipeline.add({"WAITAOF", "1", replicas, timeout});
    } else {
      pipeline.add({"WAIT", replicas, timeout});
    }
    replies = client_->pipeline(pipeline);
    if (!replies[0].is_error() || !replies[0].error_message().starts_with("NOSCRIPT")) break;
  }
  replies[0].check(
      fmt::format("Lua script '{}' on {}", script.name(), client_->endpoint().redacted()));
  const redis::Reply& wait = replies[1];
  wait.check(fmt::format("{} after '{}' on {}", durability.aof ? "WAITAOF" : "WAIT", script.name(),
                         client_->endpoint().redacted()));
  long long acknowledged = 0;
  if (durability.aof) {
    // [local fsyncs (0 or 1), replicas that fsynced]; a local 0 counts as none.
    const auto& counts = wait.array();
    if (counts.size() != 2) {
      throw ProtocolError(fmt::format("WAITAOF answered {}", wait.debug_string()));
    }
    acknowledged = counts[0].integer() >= 1 ? counts[1].integer() : -1;
  } else {
    acknowledged = wait.integer();
  }
  return {replies[0], static_cast<int>(acknowledged)};
}

void RedisEffectStore::require_waitaof() {
  const int known = waitaof_.load(std::memory_order_acquire);
  if (known == 0) {
    const std::string version =
        redis::parse_info(client_->info("server")).get("redis_version").value_or("unknown");
    if (detail::redis_version_at_least(version, 7, 2)) {
      waitaof_.store(1, std::memory_order_release);
      return;
    }
    server_version_ = version;
    waitaof_.store(-1, std::memory_order_release);
  } else if (known == 1) {
    return;
  }
  throw ConfigError(fmt::format(
      "Durability::aof needs WAITAOF, which Redis has from 7.2 on, and {} runs Redis {}; "
      "turn Durability::aof off (WAIT alone still counts the replicas) or upgrade Redis",
      client_->endpoint().redacted(), server_version_));
}

namespace {

// "claim of <key> acknowledged by 0 of 1 replicas within 100 ms"
std::string shortfall(std::string_view what, std::string_view key, int acknowledged,
                      const Durability& durability) {
  if (acknowledged < 0) {
    return fmt::format("{} of {} was not written to the primary's append-only file within {} ms",
                       what, key, durability.timeout.count());
  }
  return fmt::format("{} of {} acknowledged by {} of {} replica(s){} within {} ms", what, key,
                     acknowledged, durability.replicas, durability.aof ? " (WAITAOF)" : "",
                     durability.timeout.count());
}

}  // namespace

Claim RedisEffectStore::claim_durably(std::string_view key, std::string_view fingerprint,
                                      milliseconds lease, milliseconds ttl,
                                      const Durability& durability) {
  if (!durability.on()) return claim(key, fingerprint, lease, ttl);
  const std::string full_key = client_->key(key);
  const std::string lease_ms = ms_text(lease);
  const std::string ttl_ms = ms_text(ttl);
  std::string holder_id = random_id();
  const std::string_view args[] = {fingerprint, lease_ms, ttl_ms, holder_id};
  auto [reply, acknowledged] = run_and_wait(claim_script(), full_key, args, durability);
  Claim claim = detail::decode_claim_reply(key, full_key, reply, std::move(holder_id));
  const bool ours =
      claim.status == ClaimStatus::kClaimed || claim.status == ClaimStatus::kRecovered;
  if (!ours || acknowledged >= durability.replicas) return claim;
  // Not used: a failover now could hand the effect to a second worker. The
  // effect has not run, so giving the claim up is safe, and spares the next
  // caller a lease's wait; if the release is lost too, the lease ends it.
  bool released = false;
  try {
    released = release(key, claim.holder());
  } catch (const Error&) {
    released = false;
  }
  throw ReplicationShortfall(
      fmt::format("{}; the effect was not run. {} Retry later; check the replicas' links "
                  "(INFO replication) or lower Durability::replicas",
                  shortfall("the claim", key, acknowledged, durability),
                  released ? "The claim was released."
                           : "The claim may still exist on the primary until its lease ends "
                             "(a call meanwhile finds it in progress)."),
      std::max(acknowledged, 0), durability.replicas);
}

FinishStatus RedisEffectStore::finish_durably(std::string_view key, const Holder& holder,
                                              FinalState state, std::string_view payload,
                                              std::string_view fingerprint, milliseconds ttl,
                                              const Durability& durability) {
  if (!durability.on()) return finish(key, holder, state, payload, fingerprint, ttl);
  const std::string full_key = client_->key(key);
  const std::string token_text = std::to_string(holder.token);
  const std::string ttl_ms = ms_text(ttl);
  const std::string_view args[] = {token_text, holder.id,   to_string(state),
                                   payload,    fingerprint, ttl_ms};
  auto [reply, acknowledged] = run_and_wait(finish_script(), full_key, args, durability);
  const FinishStatus status = detail::decode_finish_reply(key, full_key, reply);
  if (status == FinishStatus::kDone && acknowledged < durability.replicas) {
    // Written on the primary; the caller tries again (the same holder's
    // finish is idempotent), then journals the result.
    throw ReplicationShortfall(
        fmt::format("{}: the result is on the primary, not yet on enough replicas",
                    shortfall("the commit", key, acknowledged, durability)),
        std::max(acknowledged, 0), durability.replicas);
  }
  return status;
}

bool RedisEffectStore::release(std::string_view key, const Holder& holder) {
  const std::string token_text = std::to_string(holder.token);
  return lease_script()
             .run(*client_, {client_->key(key)}, {token_text, holder.id, "release", "0", "0", ""})
             .integer() == 1;
}

bool RedisEffectStore::renew(std::string_view key, const Holder& holder, milliseconds lease,
                             milliseconds ttl, std::string_view fingerprint) {
  const std::string token_text = std::to_string(holder.token);
  const std::string lease_ms = ms_text(lease);
  const std::string ttl_ms = ms_text(ttl);
  return lease_script()
             .run(*client_, {client_->key(key)},
                  {token_text, holder.id, "renew", lease_ms, ttl_ms, fingerprint})
             .integer() == 1;
}

std::string RedisEffectStore::identity() const {
  const redis::Endpoint& endpoint = client_->endpoint();
  std::string where;
  if (endpoint.topology != redis::Endpoint::Topology::kStandalone) {
    // The sentinels and master name, or the seed nodes: stable across failovers.
    redis::Endpoint anonymous = endpoint;
    anonymous.user.clear();
    anonymous.password.clear();
    where = anonymous.redacted();
  } else if (endpoint.transport == redis::Endpoint::Transport::kUnix) {
    where = "unix:" + endpoint.socket_path;
  } else {
    where = fmt::format("{}:{}", endpoint.host, endpoint.port);
  }
  return fmt::format("redis {} db {} prefix {}", where, endpoint.db, client_->key(""));
}

std::optional<EffectRecord> RedisEffectStore::inspect(std::string_view key) {
  const std::string full_key = client_->key(key);
  redis::Pipeline pipeline;
  pipeline.add({"TYPE", full_key})
      .add({"HMGET", full_key, "state", "token", "fp", "result", "error", "lease_until", "holder"})
      .add({"PTTL", full_key})
      .add({"TIME"});
  return detail::decode_inspect_replies(full_key, client_->pipeline(pipeline));
}

bool RedisEffectStore::clear(std::string_view key) { return client_->del(client_->key(key)) == 1; }

}  // namespace prodsafe::idempotency
