#include "prodsafe/core/error.hpp"

#include <array>

namespace prodsafe {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kStoreUnavailable:
      return "StoreUnavailable";
    case ErrorCode::kTimeout:
      return "Timeout";
    case ErrorCode::kReplyError:
      return "ReplyError";
    case ErrorCode::kProtocolError:
      return "ProtocolError";
    case ErrorCode::kDecodeError:
      return "DecodeError";
    case ErrorCode::kInvalidArgument:
      return "InvalidArgument";
    case ErrorCode::kConflict:
      return "Conflict";
    case ErrorCode::kAlreadyInProgress:
      return "AlreadyInProgress";
    case ErrorCode::kLeaseLost:
      return "LeaseLost";
    case ErrorCode::kCardinalityViolation:
      return "CardinalityViolation";
    case ErrorCode::kEffectFailed:
      return "EffectFailed";
    case ErrorCode::kEncodeError:
      return "EncodeError";
    case ErrorCode::kResultUnavailable:
      return "ResultUnavailable";
    case ErrorCode::kIoError:
      return "IoError";
    case ErrorCode::kConfigError:
      return "ConfigError";
    case ErrorCode::kReplicationShortfall:
      return "ReplicationShortfall";
  }
  return "Unknown";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(message), code_(code) {}

bool Error::retryable() const noexcept {
  switch (code_) {
    case ErrorCode::kStoreUnavailable:
    case ErrorCode::kTimeout:
    case ErrorCode::kAlreadyInProgress:
    case ErrorCode::kReplicationShortfall:
      return true;
    default:
      return false;
  }
}

ReplyError::ReplyError(const std::string& server_message, const std::string& context)
    : Error(ErrorCode::kReplyError, context.empty()
                                        ? "Redis replied: " + server_message
                                        : context + ": Redis replied: " + server_message),
      server_message_(server_message) {}

std::string_view ReplyError::prefix() const noexcept {
  std::string_view text = server_message_;
  return text.substr(0, text.find(' '));
}

bool ReplyError::retryable() const noexcept {
  // OOM (maxmemory reached under noeviction) and NOREPLICAS
  // (min-replicas-to-write) pass when memory is freed or a replica returns.
  static constexpr std::array<std::string_view, 8> kTransient = {
      "LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN", "READONLY", "OOM", "NOREPLICAS"};
  const std::string_view first = prefix();
  for (std::string_view transient : kTransient) {
    if (first == transient) return true;
  }
  return false;
}

}  // namespace prodsafe
