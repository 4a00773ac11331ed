// How a prodsafe command reports what stopped it. The exit code follows the
// class of the error, decided in failure_of() and nowhere else; the message
// is printed once: as a line on stderr, or as JSON where the command was
// asked for JSON (`check --json` and the operator commands' --json on
// stdout, `chaos --json FILE` in the file).
//
// The JSON of a failure, on every command that takes --json:
//   {"schema_version": 1, "exit_code": 2,
//    "error": {"kind": "unreachable", "code": "StoreUnavailable", "message": "..."}}
// plus the command's own fields (check: "url", "passed": false; chaos:
// "ok": false; breaker, effects, retry, journal flush: "url"). "kind"
// names the exit code (usage 64, unreachable 2, io 74, config 78, failed 1);
// "code" is the prodsafe::ErrorCode's name, or null when the error is not a
// prodsafe::Error.
#pragma once

#include <exception>
#include <filesystem>
#include <fstream>
#include <ios>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>

#include <nlohmann/json.hpp>

#include "prodsafe/core/error.hpp"

namespace prodsafe::cli {

// Exit codes, the same on every subcommand:
//   0  ok;
//   1  the check or an invariant failed, or an error none of the others covers;
//   2  Redis could not be reached, or refused us (AUTH, ACL, not ready, not
//      a Redis); an error reply to a command (WRONGTYPE...) is 1;
//   64 (sysexits' EX_USAGE) a usage error found before anything runs: a bad
//      flag or value, an unknown subcommand or scenario, a malformed URL;
//   74 (EX_IOERR) a local file, directory or socket could not be made or
//      written (IoError, std::filesystem::filesystem_error);
//   78 (EX_CONFIG) the configuration names something missing: redis-server
//      not installed, a host that does not resolve (ConfigError).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUnreachable = 2;
inline constexpr int kExitUsage = 64;
inline constexpr int kExitIo = 74;
inline constexpr int kExitConfig = 78;

// Bumped when a field of a command's JSON changes meaning or goes away
// (adding one does not).
inline constexpr int kJsonSchemaVersion = 1;

struct Failure {
  int exit_code = kExitFailed;
  std::string_view kind = "failed";
  std::string code{};  // the ErrorCode's name; empty when not a prodsafe::Error
  std::string message{};
};

[[nodiscard]] inline Failure usage_failure(std::string message) {
  return {.exit_code = kExitUsage, .kind = "usage", .message = std::move(message)};
}

// A reply by which Redis turns us away: authentication, ACL, or a server
// not ready (LOADING, MASTERDOWN...: the retryable replies). Any other error
// reply (WRONGTYPE, a syntax error) says what we sent was wrong.
[[nodiscard]] inline bool refuses_us(const ReplyError& error) noexcept {
  const std::string_view prefix = error.prefix();
  return prefix == "NOAUTH" || prefix == "WRONGPASS" || prefix == "NOPERM" || error.retryable();
}

// The one place an exception becomes an exit code.
[[nodiscard]] inline Failure failure_of(const std::exception& error) {
  Failure failure{.message = error.what()};
  if (const auto* ours = dynamic_cast<const Error*>(&error)) {
    failure.code = std::string(to_string(ours->code()));
  }
  const auto* reply = dynamic_cast<const ReplyError*>(&error);
  // Redis did not answer, or answered but refused (AUTH, ACL, not a Redis).
  if (dynamic_cast<const StoreUnavailable*>(&error) != nullptr ||
      (reply != nullptr && refuses_us(*reply)) ||
      dynamic_cast<const ProtocolError*>(&error) != nullptr) {
    failure.exit_code = kExitUnreachable;
    failure.kind = "unreachable";
  } else if (dynamic_cast<const IoError*>(&error) != nullptr ||
             dynamic_cast<const std::filesystem::filesystem_error*>(&error) != nullptr ||
             dynamic_cast<const std::ios_base::failure*>(&error) != nullptr) {
    failure.exit_code = kExitIo;
    failure.kind = "io";
  } else if (dynamic_cast<const ConfigError*>(&error) != nullptr) {
    failure.exit_code = kExitConfig;
    failure.kind = "config";
  }
  return failure;
}

// Where a command's failure goes.
struct FailureOutput {
  std::string_view command{};         // "check": the stderr line reads "prodsafe check: ..."
  bool json_on_stdout = false;        // the JSON on stdout instead of the line on stderr
  std::filesystem::path json_file{};  // also write the JSON here
  nlohmann::json fields = nlohmann::json::object();  // the command's own fields
};

[[nodiscard]] inline nlohmann::json failure_json(const Failure& failure,
                                                 const nlohmann::json& fields) {
  nlohmann::json out = fields;
  out["schema_version"] = kJsonSchemaVersion;
  out["exit_code"] = failure.exit_code;
  out["error"] = {{"kind", failure.kind},
                  {"code", failure.code.empty() ? nlohmann::json() : nlohmann::json(failure.code)},
                  {"message", failure.message}};
  return out;
}

// Writes the failure's JSON to output.json_file, when there is one; says on
// stderr when it cannot.
inline void write_failure_file(const FailureOutput& output, const Failure& failure) {
  if (output.json_file.empty()) return;
  std::ofstream file(output.json_file, std::ios::trunc);
  file << failure_json(failure, output.fields).dump(2) << "\n" << std::flush;
  if (!file) {
    std::cerr << "prodsafe " << output.command << ": cannot write the JSON report to "
              << output.json_file.string() << "\n";
  }
}

// Reports `failure` once (see the top of this file); returns its exit code.
inline int report(const FailureOutput& output, const Failure& failure) {
  if (output.json_on_stdout) {
    std::cout << failure_json(failure, output.fields).dump(2) << "\n" << std::flush;
  } else {
    std::cerr << "prodsafe" << (output.command.empty() ? "" : " ") << output.command << ": "
              << failure.message << "\n";
  }
  write_failure_file(output, failure);
  return failure.exit_code;
}

}  // namespace prodsafe::cli
