// prodsafe's error hierarchy.
//
// Every exception prodsafe throws derives from prodsafe::Error, which derives
// from std::runtime_error. Catch the most specific class whose handling
// differs; code() and retryable() say what the caller should do.
//
// Thread safety: error objects are immutable values; copying them from several
// threads is safe.
#pragma once

#include <any>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace prodsafe {

// What went wrong, in terms of what the caller should do next.
enum class ErrorCode {
  // The store (Redis) could not be reached or the connection broke. Retrying
  // the same call later may succeed.
  kStoreUnavailable,
  // An operation did not finish within its deadline. The operation may or may
  // not have taken effect on the server; retry only what is safe to repeat.
  kTimeout,
  // The server answered with an error reply (its message is kept).
  kReplyError,
  // The server's answer was not what the protocol or the command promises.
  kProtocolError,
  // A stored value could not be decoded (garbage under a key, wrong type).
  kDecodeError,
  // The caller passed something invalid. Fix the call; retrying cannot help.
  kInvalidArgument,
  // The same key was used for a different request.
  kConflict,
  // Another worker holds a live lease on the same effect.
  kAlreadyInProgress,
  // The caller's lease (fencing token) was superseded before it committed.
  kLeaseLost,
  // A metric label would explode the series count.
  kCardinalityViolation,
  // An earlier run of the same effect failed and its failure was recorded
  // (opt-in); the effect is not run again until the record is cleared.
  kEffectFailed,
  // A value cannot be encoded for storage (invalid UTF-8 in JSON, NaN, ...).
  // Fix the value or its codec; retrying cannot help.
  kEncodeError,
  // The effect ran, but its result could not be encoded, so there is none to
  // hand back. The effect is not run again; never retry.
  kResultUnavailable,
  // A local resource failed: a file or directory could not be created,
  // written or fsynced (a full disk, a read-only mount, a permission), a
  // socket could not be bound, a process could not be forked. Nothing remote
  // is wrong; retrying the same call cannot help until the machine is fixed.
  kIoError,
  // The configuration names something that does not exist or cannot be used:
  // a host name that does not resolve, a program that is not installed.
  // Fix the configuration; retrying the same call cannot help.
  kConfigError,
  // A write was acknowledged by fewer replicas than asked for (WAIT): a
  // failover now could lose it. Retrying later may succeed.
  kReplicationShortfall,
};

// The enumerator's name without the leading 'k', e.g. "StoreUnavailable".
[[nodiscard]] std::string_view to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);

  [[nodiscard]] ErrorCode code() const noexcept { return code_; }
  // True when repeating the same call later may succeed.
  [[nodiscard]] virtual bool retryable() const noexcept;

 private:
  ErrorCode code_;
};

// Redis (or another store) is unreachable, or the connection broke mid-call.
class StoreUnavailable : public Error {
 public:
  explicit StoreUnavailable(const std::string& message)
      : Error(ErrorCode::kStoreUnavailable, message) {}

 protected:
  StoreUnavailable(ErrorCode code, const std::string& message) : Error(code, message) {}
};

// A write reached the primary, but fewer replicas acknowledged it within the
// wait than were asked for (idempotency::Durability: WAIT or WAITAOF), so a
// failover now could lose it. Not a StoreUnavailable: the store answered, and
// an effect that fails open must not run unprotected because of it.
// Retryable.
class ReplicationShortfall : public Error {
 public:
  ReplicationShortfall(const std::string& message, int acknowledged, int requested)
      : Error(ErrorCode::kReplicationShortfall, message),
        acknowledged_(acknowledged),
        requested_(requested) {}

  [[nodiscard]] int acknowledged() const noexcept { return acknowledged_; }
  [[nodiscard]] int requested() const noexcept { return requested_; }

 private:
  int acknowledged_;
  int requested_;
};

// A deadline passed: a connect, a command, or a pool checkout. A Timeout is a
// StoreUnavailable, so code that treats both alike can catch the base class.
class Timeout : public StoreUnavailable {
 public:
  explicit Timeout(const std::string& message) : StoreUnavailable(ErrorCode::kTimeout, message) {}
};

// The server answered with an error reply. server_message() is the server's
// text as sent (for example "WRONGTYPE Operation against a key holding the
// wrong kind of value").
class ReplyError : public Error {
 public:
  ReplyError(const std::string& server_message, const std::string& context);

  [[nodiscard]] const std::string& server_message() const noexcept { return server_message_; }
  // The first word of the server's message, e.g. "WRONGTYPE", "NOSCRIPT".
  [[nodiscard]] std::string_view prefix() const noexcept;
  // True for the replies that mean "try again soon": LOADING, BUSY, TRYAGAIN,
  // MASTERDOWN, CLUSTERDOWN, READONLY (a failover in progress), OOM (maxmemory
  // reached with noeviction) and NOREPLICAS (min-replicas-to-write).
  [[nodiscard]] bool retryable() const noexcept override;

 private:
  std::string server_message_;
};

// A local resource failed (see ErrorCode::kIoError): the message names the
// file, directory or socket and the system's reason (strerror). Not retryable:
// a full disk or a missing permission stays until someone fixes it.
class IoError : public Error {
 public:
  explicit IoError(const std::string& message) : Error(ErrorCode::kIoError, message) {}
};

// The configuration cannot be used as given (see ErrorCode::kConfigError),
// e.g. a StatsD host that does not resolve or a redis-server binary that is
// not installed. Not retryable; the message says what to fix.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& message) : Error(ErrorCode::kConfigError, message) {}
};

class ProtocolError : public Error {
 public:
  explicit ProtocolError(const std::string& message) : Error(ErrorCode::kProtocolError, message) {}
};

class DecodeError : public Error {
 public:
  explicit DecodeError(const std::string& message) : Error(ErrorCode::kDecodeError, message) {}
};

// A value could not be encoded for storage (Codec<T>::encode).
class EncodeError : public Error {
 public:
  explicit EncodeError(const std::string& message) : Error(ErrorCode::kEncodeError, message) {}
};

class InvalidArgument : public Error {
 public:
  explicit InvalidArgument(const std::string& message)
      : Error(ErrorCode::kInvalidArgument, message) {}
};

// The same idempotency key was used for a different request: the stored
// fingerprint differs from the caller's. A bug or a reused id; never retry.
class Conflict : public Error {
 public:
  Conflict(std::string key, const std::string& message)
      : Error(ErrorCode::kConflict, message), key_(std::move(key)) {}
  [[nodiscard]] const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

// Another worker holds a live lease on the effect. retry_after() is the time
// left on that lease: asking again after it gives the result or a recovery.
class AlreadyInProgress : public Error {
 public:
  AlreadyInProgress(std::string key, std::chrono::milliseconds retry_after,
                    const std::string& message)
      : Error(ErrorCode::kAlreadyInProgress, message),
        key_(std::move(key)),
        retry_after_(retry_after) {}
  [[nodiscard]] const std::string& key() const noexcept { return key_; }
  [[nodiscard]] std::chrono::milliseconds retry_after() const noexcept { return retry_after_; }

 private:
  std::string key_;
  std::chrono::milliseconds retry_after_;
};

// The caller's effect ran, but its lease was taken over (fencing token
// superseded) before it could commit: another worker recovered the effect.
// The result of this caller's run is carried, so it is not lost: result<T>().
class LeaseLost : public Error {
 public:
  LeaseLost(std::string key, std::uint64_t token, std::any result, const std::string& message)
      : Error(ErrorCode::kLeaseLost, message),
        key_(std::move(key)),
        token_(token),
        result_(std::move(result)) {}
  [[nodiscard]] const std::string& key() const noexcept { return key_; }
  // The superseded token this caller held.
  [[nodiscard]] std::uint64_t token() const noexcept { return token_; }
  // The caller's result, or null when T is not its type.
  template <class T>
  [[nodiscard]] const T* result() const noexcept {
    return std::any_cast<T>(&result_);
  }

 private:
  std::string key_;
  std::uint64_t token_;
  std::any result_;
};

// A metric's labels would explode its series count (a forbidden label name,
// an invalid name, or the metric's label-set limit), in strict mode.
class CardinalityViolation : public Error {
 public:
  CardinalityViolation(std::string metric, const std::string& message)
      : Error(ErrorCode::kCardinalityViolation, message), metric_(std::move(metric)) {}
  [[nodiscard]] const std::string& metric() const noexcept { return metric_; }

 private:
  std::string metric_;
};

// A recorded failure replayed to a later caller (record_failures is opt-in).
class EffectFailed : public Error {
 public:
  EffectFailed(std::string key, std::string recorded_error, const std::string& message)
      : Error(ErrorCode::kEffectFailed, message),
        key_(std::move(key)),
        recorded_error_(std::move(recorded_error)) {}
  [[nodiscard]] const std::string& key() const noexcept { return key_; }
  // What the failed run's exception said.
  [[nodiscard]] const std::string& recorded_error() const noexcept { return recorded_error_; }

 private:
  std::string key_;
  std::string recorded_error_;
};

// The effect ran before, but its result could not be encoded and stored (see
// EncodeError), so later calls cannot be given it. The effect is not run again
// until the record expires or is cleared (EffectStore::clear).
class ResultUnavailable : public Error {
 public:
  ResultUnavailable(std::string key, std::string reason, const std::string& message)
      : Error(ErrorCode::kResultUnavailable, message),
        key_(std::move(key)),
        reason_(std::move(reason)) {}
  [[nodiscard]] const std::string& key() const noexcept { return key_; }
  // Why the result could not be stored.
  [[nodiscard]] const std::string& reason() const noexcept { return reason_; }

 private:
  std::string key_;
  std::string reason_;
};

}  // namespace prodsafe
