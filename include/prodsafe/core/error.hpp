// prodsafe's error hierarchy.
//
// Every exception prodsafe throws derives from prodsafe::Error, which derives
// from std::runtime_error. Catch the most specific class whose handling
// differs; code() and retryable() say what the caller should do.
//
// Thread safety: error objects are immutable values; copying them from several
// threads is safe.
#pragma once

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
  // A circuit breaker is open.
  kCircuitOpen,
  // A metric label would explode the series count.
  kCardinalityViolation,
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
  // MASTERDOWN, CLUSTERDOWN, READONLY (a failover in progress).
  [[nodiscard]] bool retryable() const noexcept override;

 private:
  std::string server_message_;
};

class ProtocolError : public Error {
 public:
  explicit ProtocolError(const std::string& message) : Error(ErrorCode::kProtocolError, message) {}
};

class DecodeError : public Error {
 public:
  explicit DecodeError(const std::string& message) : Error(ErrorCode::kDecodeError, message) {}
};

class InvalidArgument : public Error {
 public:
  explicit InvalidArgument(const std::string& message)
      : Error(ErrorCode::kInvalidArgument, message) {}
};

}  // namespace prodsafe
